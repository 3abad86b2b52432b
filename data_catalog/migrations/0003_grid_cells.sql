-- Grid keys for the pairing join (see data_catalog/grid.py).
--
-- Our patches are cells of a projected grid: a patch of `size` pixels at `gsd` metres has its edges on multiples of
-- cell_m = gsd * size in its UTM CRS (pipelines/imagery/grid.py). Such a patch is identified by (grid, cell) with
-- grid = '<crs>:<cell_m>' and cell = i * 2^32 + j, i = floor(x / cell_m), j = floor(y / cell_m). A point lies in the
-- patch exactly when its own key in that grid is equal, so pairing is an integer equi-join instead of a geometric
-- one. Patches whose transform is not grid-aligned are simply absent from this view and paired geometrically.
-- patch_grid_keys derives the keys; patch_cells and document_cells hold them (derived indexes, rebuilt together by
-- georeset.data_catalog.grid.refresh_grid_index, which pairing calls; never edited by hand). They are tables, not
-- views, so the join planner has their sizes.

CREATE VIEW patch_grid_keys AS
WITH t AS (
    SELECT patch_id, crs, transform[1] * size AS cell_m,
           transform[3] / (transform[1] * size) AS fi, transform[6] / (transform[1] * size) - 1 AS fj
    FROM patches
    WHERE len(transform) = 6 AND transform[1] > 0 AND transform[2] = 0 AND transform[4] = 0
      AND transform[5] = -transform[1] AND size > 0
)
SELECT patch_id, crs, cell_m, crs || ':' || CAST(round(cell_m, 6) AS VARCHAR) AS grid,
       round(fi)::BIGINT * 4294967296 + round(fj)::BIGINT AS cell
FROM t
WHERE abs(fi - round(fi)) < 1e-6 AND abs(fj - round(fj)) < 1e-6;

CREATE TABLE patch_cells (
    patch_id VARCHAR NOT NULL,
    crs      VARCHAR NOT NULL,
    cell_m   DOUBLE NOT NULL,
    grid     VARCHAR NOT NULL,
    cell     BIGINT NOT NULL
);

-- The documents' keys in every grid that has patches near them.
CREATE TABLE document_cells (
    doc_id VARCHAR NOT NULL,
    grid   VARCHAR NOT NULL,
    cell   BIGINT NOT NULL
);
