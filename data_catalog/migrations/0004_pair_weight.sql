-- Pairs carry a weight (issue 13): 1.0 for a document whose own point lies in the patch, less for a pair through a
-- resolved toponym of a place small enough for the patch (see pipelines/pairing/scale.py). `how` is the pair's kind.
ALTER TABLE pairs ADD COLUMN weight DOUBLE;

CREATE OR REPLACE VIEW paired_corpus AS
SELECT
    x.pair_id, x.how, x.score AS pair_score, x.weight AS pair_weight, x.distance_m,
    d.doc_id, d.source AS doc_source, d.title, d.text, d.lon AS doc_lon, d.lat AS doc_lat,
    p.patch_id, p.sensor, p.scene_id, p.datetime AS acquired, p.gsd, p.size, p.bands, p.clear_fraction,
    p.cloud_fraction, p.path AS pixels_path, p.geom AS footprint,
    d.licence AS text_licence, p.licence AS image_licence
FROM pairs x
JOIN documents d USING (doc_id)
JOIN patches p USING (patch_id);
