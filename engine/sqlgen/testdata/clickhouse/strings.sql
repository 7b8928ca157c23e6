SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(toFloat64(sum(_n))) AS value, toInt64(1) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  company_id AS _g,
  _v12 AS _m,
  0 AS _e,
  toFloat64(1) AS _val,
  (((((_v1 > 0)) AND (_v5))) OR (_v8)) AS _u,
  (if((((_v1 > 0)) AND (_v5)), toInt64(1), toInt64(0)) + if(_v8, toInt64(2), toInt64(0))) AS _um
FROM (SELECT company_id,
  time_ms,
  indexOf(meta_keys, 'region') AS _v1,
  (((arrayElement(meta_keys, 1) = '')) AND ((arrayElement(meta_types, 1) = 5))) AS _v5,
  toInt64(lengthUTF8(route)) AS _v10,
  arrayElement(meta_strs, _v1) AS _v2,
  arrayElement(meta_nums, _v1) AS _v3,
  arrayElement(meta_types, _v1) AS _v4,
  ((NOT ((if((_v4 = 0), 3, _v4) = 3)))) AS _v6,
  replaceRegexpAll(if((_v4 = 0), '', _v2), '^[\\t\\n\\v\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]+|[\\t\\n\\v\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]+$', '') AS _v7,
  (match(_v7, '[^\\x{0}-\\x{7F}]')) AS _v8,
  ((position(lowerUTF8(_v7), 'eu') > 0)) AS _v9,
  ((_v9) AND ((_v10 > toInt64(3)))) AS _v11,
  (((blocked_by = '')) AND ((NOT ((((((_v6)))))))) AND (_v11)) AS _v12
FROM (SELECT blocked_by, company_id, meta_keys, meta_nums, meta_strs, meta_types, route, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE (_m OR _u)
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
