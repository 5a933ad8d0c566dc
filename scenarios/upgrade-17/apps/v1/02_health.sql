-- The application's health page: checkpoint counters, read where
-- PostgreSQL 15 keeps them (PostgreSQL 17 moved them to pg_stat_checkpointer).

-- @name checkpoint counters
-- @expect rows 1
SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter;
