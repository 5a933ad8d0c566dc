-- The health page fixed for both majors: the counters every version keeps.

-- @name background writer counters
-- @expect rows 1
SELECT buffers_clean, maxwritten_clean, buffers_alloc FROM pg_stat_bgwriter;
