WITH r AS (SELECT (time_ms - (time_ms % CAST(3600000 AS BIGINT))) AS _b,
  company_id AS _g,
  (_v1) AS _m,
  false AS _e,
  CAST('1' AS DOUBLE) AS _val,
  false AS _u,
  CAST(0 AS BIGINT) AS _um
FROM (SELECT company_id,
  time_ms,
  (NOT ((((blocked_by = ''))))) AS _v1
FROM (SELECT blocked_by, company_id, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000))),
agg AS (SELECT CASE WHEN GROUPING(_b) = 0 THEN 1 WHEN GROUPING(_g) = 0 THEN 2 ELSE 0 END AS s,
  coalesce(_b, 0) AS bucket, coalesce(_g, '') AS grp,
  count(*) FILTER (WHERE _m) AS n, count(*) FILTER (WHERE _m AND _e) AS errs,
  CAST(count(*) FILTER (WHERE _m) AS DOUBLE) AS value, 1 AS has, count(*) FILTER (WHERE _u) AS unc, bit_or(_um) AS umask
  FROM r WHERE _m
  GROUP BY GROUPING SETS ((_b), (_g), ()))
SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),
  (SELECT count(*) FROM events WHERE time_ms >= 0 AND time_ms < 7200000) AS scanned
FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)
WHERE rn <= 10
