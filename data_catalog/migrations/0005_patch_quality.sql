-- Patch quality you can filter on (issue 14): the shadow fraction next to clear / cloud / nodata, where the fractions
-- come from (SCL, QA_PIXEL, eo:cloud_cover, none (SAR)), the per-pixel quality mask saved next to the pixels
-- (uint8 size x size: 0 clear, 1 cloud, 2 shadow, 3 nodata, 4 unknown / other; NULL for older rows), and which rule
-- decided each band's reflectance offset (see pipelines/imagery/providers.py).
ALTER TABLE patches ADD COLUMN shadow_fraction DOUBLE;
ALTER TABLE patches ADD COLUMN quality_source VARCHAR;
ALTER TABLE patches ADD COLUMN mask_path VARCHAR;
ALTER TABLE patches ADD COLUMN offset_rules VARCHAR[];
-- Same-day tiles (solar day) whose pixels filled the patch's nodata edge (pipelines/imagery/mosaic.py).
ALTER TABLE patches ADD COLUMN mosaic_scenes VARCHAR[];
