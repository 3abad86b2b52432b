-- GEO-ReSeT catalogue, schema version 1.
-- Every row carries provenance: source, licence, a retrieval/creation time and a content hash.
-- Natural keys (marked `key`) are kept unique by the one writer (DuckLake has no PRIMARY KEY/UNIQUE constraints),
-- so a re-run upserts instead of duplicating.

CREATE TABLE documents (
    doc_id        VARCHAR NOT NULL,            -- key; '<source>:<source_id>'
    source        VARCHAR NOT NULL,             -- 'osm', 'wikipedia', 'file'
    source_id     VARCHAR NOT NULL,             -- e.g. 'node/123', 'en:Helsinki Cathedral'
    title         VARCHAR,
    text          VARCHAR NOT NULL,
    lang          VARCHAR,
    url           VARCHAR,
    lon           DOUBLE,
    lat           DOUBLE,
    geom          GEOMETRY,                     -- feature geometry (EPSG:4326, x=lon y=lat)
    tags          JSON,
    licence       VARCHAR NOT NULL,
    retrieved_at  TIMESTAMP NOT NULL,
    content_hash  VARCHAR NOT NULL             -- (source, source_id) is unique too: doc_id is made of them
);

CREATE TABLE places (
    place_id        VARCHAR NOT NULL,          -- key; 'geonames:<id>' or 'country:<ISO2>'
    name            VARCHAR NOT NULL,
    feature_class   VARCHAR,                    -- GeoNames class: P populated place, A admin, ...
    feature_code    VARCHAR,
    country_code    VARCHAR,
    admin1_code     VARCHAR,
    population      BIGINT,
    lon             DOUBLE,
    lat             DOUBLE,
    geom            GEOMETRY,
    alternatenames  VARCHAR[],
    source          VARCHAR NOT NULL,
    licence         VARCHAR NOT NULL,
    retrieved_at    TIMESTAMP NOT NULL,
    content_hash    VARCHAR NOT NULL
);

CREATE TABLE place_names (
    name_key  VARCHAR NOT NULL,                 -- normalised (casefolded, accents stripped) name
    place_id  VARCHAR NOT NULL,
    is_primary BOOLEAN NOT NULL                 -- key: (name_key, place_id)
);

CREATE TABLE toponyms (
    toponym_id    VARCHAR NOT NULL,            -- key; '<doc_id>#<start>-<end>'
    doc_id        VARCHAR NOT NULL,
    start_char    INTEGER NOT NULL,
    end_char      INTEGER NOT NULL,
    surface       VARCHAR NOT NULL,
    label         VARCHAR,                      -- spaCy label or 'GAZ' for gazetteer matches
    place_id      VARCHAR,                      -- NULL when unresolved
    score         DOUBLE,
    lon           DOUBLE,
    lat           DOUBLE,
    geom          GEOMETRY,
    reason        VARCHAR,                      -- why unresolved / how resolved
    method        VARCHAR NOT NULL,             -- geoparser name + version
    licence       VARCHAR NOT NULL,
    retrieved_at  TIMESTAMP NOT NULL,
    content_hash  VARCHAR NOT NULL
);

CREATE TABLE scenes (
    scene_id      VARCHAR NOT NULL,            -- key; '<collection>/<item id>'
    collection    VARCHAR NOT NULL,
    item_id       VARCHAR NOT NULL,
    datetime      TIMESTAMP,
    platform      VARCHAR,
    constellation VARCHAR,
    sensor        VARCHAR,                      -- 'S2' or 'S1'
    crs           VARCHAR,
    cloud_cover   DOUBLE,
    simulated     BOOLEAN NOT NULL DEFAULT false,
    geom          GEOMETRY,
    stac_api      VARCHAR,
    item_json     JSON NOT NULL,                -- unsigned hrefs only
    source        VARCHAR NOT NULL,
    licence       VARCHAR NOT NULL,
    retrieved_at  TIMESTAMP NOT NULL,
    content_hash  VARCHAR NOT NULL
);

CREATE TABLE patches (
    patch_id        VARCHAR NOT NULL,          -- key; hash of (scene, cell, gsd, size)
    scene_id        VARCHAR NOT NULL,
    sensor          VARCHAR NOT NULL,
    lon             DOUBLE NOT NULL,            -- patch centre
    lat             DOUBLE NOT NULL,
    crs             VARCHAR NOT NULL,
    transform       DOUBLE[],                   -- affine a,b,c,d,e,f of the patch grid
    gsd             DOUBLE NOT NULL,
    size            INTEGER NOT NULL,
    bands           VARCHAR[] NOT NULL,
    wavelengths_um  DOUBLE[],                   -- central wavelengths (NULL entries for SAR)
    datetime        TIMESTAMP,
    clear_fraction  DOUBLE,
    cloud_fraction  DOUBLE,
    nodata_fraction DOUBLE,
    geom            GEOMETRY,                   -- footprint in EPSG:4326
    path            VARCHAR NOT NULL,           -- .npy file relative to the data directory
    checksum        VARCHAR NOT NULL,           -- sha256 of the pixel bytes
    source          VARCHAR NOT NULL,
    licence         VARCHAR NOT NULL,
    retrieved_at    TIMESTAMP NOT NULL,
    content_hash    VARCHAR NOT NULL
);

CREATE TABLE pairs (
    pair_id       VARCHAR NOT NULL,            -- key; '<doc_id>|<patch_id>'
    doc_id        VARCHAR NOT NULL,
    patch_id      VARCHAR NOT NULL,
    how           VARCHAR NOT NULL,             -- 'point_in_patch' or 'toponym_in_patch'
    toponym_id    VARCHAR,
    score         DOUBLE NOT NULL,
    distance_m    DOUBLE,
    source        VARCHAR NOT NULL,
    licence       VARCHAR NOT NULL,             -- licences of both sides
    retrieved_at  TIMESTAMP NOT NULL,
    content_hash  VARCHAR NOT NULL              -- (doc_id, patch_id) is unique too: pair_id is made of them
);

CREATE TABLE embeddings (
    owner_kind  VARCHAR NOT NULL,               -- 'patch' or 'document'
    owner_id    VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    mean        FLOAT[] NOT NULL,
    variance    FLOAT[],
    created_at  TIMESTAMP NOT NULL              -- key: (owner_kind, owner_id, run_id)
);

CREATE TABLE snapshots (
    snapshot_id  VARCHAR NOT NULL,             -- key; hash of the content hashes of the exported rows
    created_at   TIMESTAMP NOT NULL,
    counts       JSON NOT NULL,
    manifest     VARCHAR                        -- path of the shard manifest
);

CREATE TABLE runs (
    run_id        VARCHAR NOT NULL,             -- key
    kind          VARCHAR NOT NULL,             -- 'train' or 'evaluate'
    snapshot_id   VARCHAR,
    config        JSON,
    code_version  VARCHAR,
    started_at    TIMESTAMP,
    finished_at   TIMESTAMP,
    status        VARCHAR,
    metrics       JSON,
    checkpoint    VARCHAR
);
