WITH r AS (SELECT (time_ms - (time_ms % CAST(3600000 AS BIGINT))) AS _b,
  company_id AS _g,
  _v10 AS _m,
  false AS _e,
  CAST('0' AS DOUBLE) AS _val,
  (_v6) AS _u,
  ((CASE WHEN _v6 THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END)) AS _um,
  true AS _ut,
  user_id AS _us,
  _v11 AS _un
FROM (SELECT company_id,
  time_ms,
  user_id,
  _v11,
  _v6,
  (((blocked_by = '')) AND (_v9)) AS _v10
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  user_id,
  _v11,
  _v6,
  (NOT ((((((_v7 = 3))) AND ((_v8 = 'free')))))) AS _v9
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  user_id,
  _v11,
  _v6,
  (CASE WHEN (_v4 = 0) THEN 3 ELSE _v4 END) AS _v7,
  (CASE WHEN (_v4 = 0) THEN 'free' ELSE _v2 END) AS _v8
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  user_id,
  _v11,
  coalesce(trait_strs[_v1], '') AS _v2,
  coalesce(trait_nums[_v1], 0) AS _v3,
  coalesce(trait_types[_v1], 0) AS _v4,
  (((_v1 > 0)) AND ((coalesce(trait_types[_v5], 0) = 5))) AS _v6
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  trait_nums,
  trait_strs,
  trait_types,
  user_id,
  coalesce(list_position(trait_keys, 'company.plan'), 0) AS _v1,
  coalesce(list_position(trait_keys, 'company.'), 0) AS _v5,
  (CASE WHEN (CAST('0' AS DOUBLE) = 0) THEN CAST('0' AS DOUBLE) ELSE CAST('0' AS DOUBLE) END) AS _v11
FROM (SELECT blocked_by, company_id, time_ms, trait_keys, trait_nums, trait_strs, trait_types, user_id FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = '')))))))),
agg AS (SELECT CASE WHEN GROUPING(_b) = 0 THEN 1 WHEN GROUPING(_g) = 0 THEN 2 ELSE 0 END AS s,
  coalesce(_b, 0) AS bucket, coalesce(_g, '') AS grp,
  count(*) FILTER (WHERE _m) AS n, count(*) FILTER (WHERE _m AND _e) AS errs,
  CAST(count(DISTINCT _us) FILTER (WHERE _m AND NOT _e AND _ut) + count(DISTINCT _un) FILTER (WHERE _m AND NOT _e AND NOT _ut) AS DOUBLE) AS value, 1 AS has, count(*) FILTER (WHERE _u) AS unc, bit_or(_um) AS umask
  FROM r WHERE (_m OR _u)
  GROUP BY GROUPING SETS ((_b), (_g), ()))
SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),
  (SELECT count(*) FROM events WHERE time_ms >= 0 AND time_ms < 7200000) AS scanned
FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)
WHERE rn <= 10
