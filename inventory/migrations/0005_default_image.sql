-- One image is the default: new users are pinned to it. The console hosts hold the images
-- (anyops image build); the inventory records the versions they have and which one new
-- users get. At most one row is the default.
ALTER TABLE images ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX images_one_default ON images (is_default) WHERE is_default;
