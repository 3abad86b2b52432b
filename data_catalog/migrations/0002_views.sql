-- Friendly views and macros for analysts (read-only use).

CREATE MACRO km_between(lon1, lat1, lon2, lat2) AS
    ST_Distance_Sphere(ST_Point(lat1, lon1), ST_Point(lat2, lon2)) / 1000.0;

CREATE MACRO within_km(lon1, lat1, lon2, lat2, km) AS
    ST_Distance_Sphere(ST_Point(lat1, lon1), ST_Point(lat2, lon2)) <= km * 1000.0;

CREATE VIEW paired_corpus AS
SELECT
    x.pair_id, x.how, x.score AS pair_score, x.distance_m,
    d.doc_id, d.source AS doc_source, d.title, d.text, d.lon AS doc_lon, d.lat AS doc_lat,
    p.patch_id, p.sensor, p.scene_id, p.datetime AS acquired, p.gsd, p.size, p.bands, p.clear_fraction,
    p.cloud_fraction, p.path AS pixels_path, p.geom AS footprint,
    d.licence AS text_licence, p.licence AS image_licence
FROM pairs x
JOIN documents d USING (doc_id)
JOIN patches p USING (patch_id);

CREATE VIEW resolved_toponyms AS
SELECT t.toponym_id, t.doc_id, d.title AS document, t.surface, t.label, t.place_id, pl.name AS place_name,
       pl.country_code, pl.population, t.score, t.lon, t.lat, t.reason
FROM toponyms t
JOIN documents d USING (doc_id)
LEFT JOIN places pl USING (place_id);
