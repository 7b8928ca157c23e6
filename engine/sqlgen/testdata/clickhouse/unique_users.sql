SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(uniqExactIfMerge(_st) + uniqExactIfMerge(_sn)) AS value, toInt64(1) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid, uniqExactIfState(_us, _m AND NOT _e AND _ut) AS _st, uniqExactIfState(_un, _m AND NOT _e AND NOT _ut) AS _sn
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  company_id AS _g,
  _v9 AS _m,
  0 AS _e,
  toFloat64(0) AS _val,
  (_v6) AS _u,
  (if(_v6, toInt64(1), toInt64(0))) AS _um,
  1 AS _ut,
  user_id AS _us,
  _v10 AS _un
FROM (SELECT company_id,
  time_ms,
  user_id,
  indexOf(trait_keys, 'company.plan') AS _v1,
  indexOf(trait_keys, 'company.') AS _v5,
  if((toFloat64(0) = 0), toFloat64(0), toFloat64(0)) AS _v10,
  arrayElement(trait_strs, _v1) AS _v2,
  arrayElement(trait_nums, _v1) AS _v3,
  arrayElement(trait_types, _v1) AS _v4,
  (((_v1 > 0)) AND ((arrayElement(trait_types, _v5) = 5))) AS _v6,
  if((_v4 = 0), 'free', _v2) AS _v7,
  (NOT ((((((if((_v4 = 0), 3, _v4) = 3))) AND ((_v7 = 'free')))))) AS _v8,
  (((blocked_by = '')) AND (_v8)) AS _v9
FROM (SELECT blocked_by, company_id, time_ms, trait_keys, trait_nums, trait_strs, trait_types, user_id FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE (_m OR _u)
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
