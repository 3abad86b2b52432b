-- Places carry their extent where the gazetteer knows one (issue 15: divisions, countries and macro-regions get the
-- box of their member cities; the polygon is kept in places.geom), and toponyms carry it from the resolved place,
-- so pairing (extent vs patch) and analysts can tell a country or region from a town.
ALTER TABLE places ADD COLUMN extent_m DOUBLE;
ALTER TABLE toponyms ADD COLUMN extent_m DOUBLE;
COMMENT ON COLUMN places.extent_m IS 'The larger side of the place''s extent in metres (its bounding box, kept as the polygon in geom); NULL when only a point is known.';
COMMENT ON COLUMN toponyms.extent_m IS 'The larger side in metres of the resolved place''s extent (places.extent_m); NULL when unknown or unresolved.';
