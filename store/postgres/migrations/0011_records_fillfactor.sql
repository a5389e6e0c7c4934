-- Records are rewritten in place far more often than they are created (the end-of-day
-- batch rewrites every open loan it changes): room left in each page lets PostgreSQL keep
-- a new version on the page of the old one and, when no indexed column changed, add no
-- index entries for it (a HOT update). Pages written from now on keep the room.
ALTER TABLE module_records SET (fillfactor = 75);
