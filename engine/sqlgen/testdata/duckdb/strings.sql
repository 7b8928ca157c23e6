WITH r AS (SELECT (time_ms - (time_ms % CAST(3600000 AS BIGINT))) AS _b,
  company_id AS _g,
  _v14 AS _m,
  false AS _e,
  CAST('1' AS DOUBLE) AS _val,
  (((((_v1 > 0)) AND (_v5))) OR (_v9)) AS _u,
  ((CASE WHEN (((_v1 > 0)) AND (_v5)) THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END) + (CASE WHEN _v9 THEN CAST(2 AS BIGINT) ELSE CAST(0 AS BIGINT) END)) AS _um
FROM (SELECT company_id,
  time_ms,
  _v1,
  _v5,
  _v9,
  (((blocked_by = '')) AND ((NOT ((_v10)))) AND (((_v11) AND (_v13)))) AS _v14
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v1,
  _v5,
  _v13,
  _v10,
  (regexp_matches(_v8, '[^\x{0}-\x{7F}]')) AS _v9,
  (contains(lower(_v8), 'eu')) AS _v11
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v1,
  _v5,
  _v13,
  regexp_replace(_v7, '^[\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+|[\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+$', '', 'g') AS _v8,
  ((((((NOT ((_v6 = 3)))))))) AS _v10
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v1,
  _v5,
  _v13,
  (CASE WHEN (_v4 = 0) THEN 3 ELSE _v4 END) AS _v6,
  (CASE WHEN (_v4 = 0) THEN '' ELSE _v2 END) AS _v7
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v1,
  _v5,
  coalesce(meta_strs[_v1], '') AS _v2,
  coalesce(meta_nums[_v1], 0) AS _v3,
  coalesce(meta_types[_v1], 0) AS _v4,
  (_v12 > CAST(3 AS BIGINT)) AS _v13
FROM (SELECT blocked_by,
  company_id,
  meta_nums,
  meta_strs,
  meta_types,
  time_ms,
  coalesce(list_position(meta_keys, 'region'), 0) AS _v1,
  (((coalesce(meta_keys[1], '') = '')) AND ((coalesce(meta_types[1], 0) = 5))) AS _v5,
  CAST(length(route) AS BIGINT) AS _v12
FROM (SELECT blocked_by, company_id, meta_keys, meta_nums, meta_strs, meta_types, route, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))))))),
agg AS (SELECT CASE WHEN GROUPING(_b) = 0 THEN 1 WHEN GROUPING(_g) = 0 THEN 2 ELSE 0 END AS s,
  coalesce(_b, 0) AS bucket, coalesce(_g, '') AS grp,
  count(*) FILTER (WHERE _m) AS n, count(*) FILTER (WHERE _m AND _e) AS errs,
  CAST(count(*) FILTER (WHERE _m) AS DOUBLE) AS value, 1 AS has, count(*) FILTER (WHERE _u) AS unc, bit_or(_um) AS umask
  FROM r WHERE (_m OR _u)
  GROUP BY GROUPING SETS ((_b), (_g), ()))
SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),
  (SELECT count(*) FROM events WHERE time_ms >= 0 AND time_ms < 7200000) AS scanned
FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)
WHERE rn <= 10
