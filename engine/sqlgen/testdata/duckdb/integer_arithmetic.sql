WITH r AS (SELECT (time_ms - (time_ms % CAST(3600000 AS BIGINT))) AS _b,
  company_id AS _g,
  _v7 AS _m,
  false AS _e,
  CAST(_v9 AS DOUBLE) AS _val,
  false AS _u,
  CAST(0 AS BIGINT) AS _um
FROM (SELECT company_id,
  time_ms,
  _v9,
  (((blocked_by = '')) AND ((NOT ((((_v2)))))) AND (((_v4) OR (_v6)))) AS _v7
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v2,
  _v6,
  _v9,
  (((_v3 = CAST(4 AS BIGINT)))) AS _v4
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v2,
  (_v1 % (CASE WHEN CAST(100 AS BIGINT) = 0 OR CAST(100 AS BIGINT) = -1 THEN 1 ELSE CAST(100 AS BIGINT) END)) AS _v3,
  (_v5 < CAST(0 AS BIGINT)) AS _v6,
  CAST(((CAST(_v8 AS HUGEINT) + CAST(1 AS BIGINT) + CAST(9223372036854775808 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) + CAST(18446744073709551616 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) - CAST(9223372036854775808 AS HUGEINT) AS BIGINT) AS _v9
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  (CASE WHEN (has_response) THEN CAST(status AS BIGINT) ELSE CAST(0 AS BIGINT) END) AS _v1,
  ((CAST(100 AS BIGINT) = 0)) AS _v2,
  CAST(((-CAST(CAST(req_size AS BIGINT) AS HUGEINT) + CAST(9223372036854775808 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) + CAST(18446744073709551616 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) - CAST(9223372036854775808 AS HUGEINT) AS BIGINT) AS _v5,
  CAST(((CAST(CAST(req_size AS BIGINT) AS HUGEINT) * CAST(2 AS BIGINT) + CAST(9223372036854775808 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) + CAST(18446744073709551616 AS HUGEINT)) % CAST(18446744073709551616 AS HUGEINT) - CAST(9223372036854775808 AS HUGEINT) AS BIGINT) AS _v8
FROM (SELECT blocked_by, company_id, has_response, req_size, status, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))))),
agg AS (SELECT CASE WHEN GROUPING(_b) = 0 THEN 1 WHEN GROUPING(_g) = 0 THEN 2 ELSE 0 END AS s,
  coalesce(_b, 0) AS bucket, coalesce(_g, '') AS grp,
  count(*) FILTER (WHERE _m) AS n, count(*) FILTER (WHERE _m AND _e) AS errs,
  coalesce(sum(_val) FILTER (WHERE _m AND NOT _e), 0) AS value, 1 AS has, count(*) FILTER (WHERE _u) AS unc, bit_or(_um) AS umask
  FROM r WHERE _m
  GROUP BY GROUPING SETS ((_b), (_g), ()))
SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),
  (SELECT count(*) FROM events WHERE time_ms >= 0 AND time_ms < 7200000) AS scanned
FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)
WHERE rn <= 10
