-- PostgreSQL's migration 0011 leaves room in the pages of module_records for in-place
-- updates; SQLite has no such setting (a record write that keeps the owner and status sets
-- neither, so SQLite leaves those index entries alone). Nothing to do: this keeps the two
-- adapters' migrations numbered alike.
SELECT 1;
