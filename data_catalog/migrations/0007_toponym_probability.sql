-- Toponyms carry the geoparser's calibrated probability (issue 15: that the toponym is a place within 161 km of
-- the one meant), the GeoNames feature class of the place (P populated place, A country/division, L area) and
-- their kind: 'toponym', or 'demonym' for an inhabitant/adjective form ("Nigerian", "Texans") standing for a place.
ALTER TABLE toponyms ADD COLUMN probability DOUBLE;
ALTER TABLE toponyms ADD COLUMN feature_class VARCHAR;
ALTER TABLE toponyms ADD COLUMN kind VARCHAR;
