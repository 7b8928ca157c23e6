WITH r AS (SELECT (time_ms - (time_ms % CAST(3600000 AS BIGINT))) AS _b,
  company_id AS _g,
  _v7 AS _m,
  _v18 AS _e,
  _v17 AS _val,
  ((_v12) OR (_v15)) AS _u,
  ((CASE WHEN _v12 THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END) + (CASE WHEN _v15 THEN CAST(2 AS BIGINT) ELSE CAST(0 AS BIGINT) END)) AS _um
FROM (SELECT company_id,
  time_ms,
  _v12,
  _v7,
  _v15,
  _v17,
  ((_v16) OR ((NOT (((isfinite(_v17))))))) AS _v18
FROM (SELECT company_id,
  time_ms,
  _v12,
  _v7,
  _v15,
  ((NOT ((((_v11 = 2)) OR ((((_v11 = 3)) AND (_v13) AND (isfinite(_v14)))))))) AS _v16,
  (CASE WHEN (_v11 = 2) THEN _v10 ELSE _v14 END) AS _v17
FROM (SELECT company_id,
  time_ms,
  _v10,
  _v11,
  _v12,
  _v13,
  (((blocked_by = '')) AND (_v6)) AS _v7,
  coalesce(TRY_CAST((CASE WHEN _v13 THEN _v9 ELSE '0' END) AS DOUBLE), 0) AS _v14,
  (((_v11 = 3)) AND (_v13) AND ((NOT ((TRY_CAST((CASE WHEN _v13 THEN _v9 ELSE '0' END) AS DOUBLE) IS NOT NULL AND NOT regexp_matches((CASE WHEN _v13 THEN _v9 ELSE '0' END), '[eE][+-]?[0-9]{5}')))))) AS _v15
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  _v9,
  _v10,
  _v11,
  _v12,
  (((((_v4 = 3))) AND ((_v2 = 'pro')))) AS _v6,
  regexp_matches(_v9, '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$') AS _v13
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  coalesce(meta_strs[_v1], '') AS _v2,
  coalesce(meta_nums[_v1], 0) AS _v3,
  coalesce(meta_types[_v1], 0) AS _v4,
  coalesce(meta_strs[_v8], '') AS _v9,
  coalesce(meta_nums[_v8], 0) AS _v10,
  coalesce(meta_types[_v8], 0) AS _v11,
  (((((_v1 > 0)) AND (_v5))) OR ((((_v8 > 0)) AND (_v5)))) AS _v12
FROM (SELECT blocked_by,
  company_id,
  meta_nums,
  meta_strs,
  meta_types,
  time_ms,
  coalesce(list_position(meta_keys, 'plan'), 0) AS _v1,
  (((coalesce(meta_keys[1], '') = '')) AND ((coalesce(meta_types[1], 0) = 5))) AS _v5,
  coalesce(list_position(meta_keys, 'tokens'), 0) AS _v8
FROM (SELECT blocked_by, company_id, meta_keys, meta_nums, meta_strs, meta_types, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))))))),
agg AS (SELECT CASE WHEN GROUPING(_b) = 0 THEN 1 WHEN GROUPING(_g) = 0 THEN 2 ELSE 0 END AS s,
  coalesce(_b, 0) AS bucket, coalesce(_g, '') AS grp,
  count(*) FILTER (WHERE _m) AS n, count(*) FILTER (WHERE _m AND _e) AS errs,
  coalesce(sum(_val) FILTER (WHERE _m AND NOT _e), 0) AS value, 1 AS has, count(*) FILTER (WHERE _u) AS unc, bit_or(_um) AS umask
  FROM r WHERE (_m OR _u)
  GROUP BY GROUPING SETS ((_b), (_g), ()))
SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),
  (SELECT count(*) FROM events WHERE time_ms >= 0 AND time_ms < 7200000) AS scanned
FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)
WHERE rn <= 10
