SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(sum(_vs)) AS value, toInt64(1) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid, sumIf(_val, _m AND NOT _e) AS _vs
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  company_id AS _g,
  _v7 AS _m,
  _v18 AS _e,
  _v17 AS _val,
  ((_v12) OR (_v15)) AS _u,
  (if(_v12, toInt64(1), toInt64(0)) + if(_v15, toInt64(2), toInt64(0))) AS _um
FROM (SELECT company_id,
  time_ms,
  indexOf(meta_keys, 'plan') AS _v1,
  (((arrayElement(meta_keys, 1) = '')) AND ((arrayElement(meta_types, 1) = 5))) AS _v5,
  indexOf(meta_keys, 'tokens') AS _v8,
  arrayElement(meta_strs, _v1) AS _v2,
  arrayElement(meta_nums, _v1) AS _v3,
  arrayElement(meta_types, _v1) AS _v4,
  arrayElement(meta_strs, _v8) AS _v9,
  arrayElement(meta_nums, _v8) AS _v10,
  arrayElement(meta_types, _v8) AS _v11,
  (((((_v1 > 0)) AND (_v5))) OR ((((_v8 > 0)) AND (_v5)))) AS _v12,
  (((((_v4 = 3))) AND ((_v2 = 'pro')))) AS _v6,
  match(_v9, '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?$') AS _v13,
  (((blocked_by = '')) AND (_v6)) AS _v7,
  if(startsWith(if(_v13, _v9, '0'), '-'), -if(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', '') = '', toFloat64(0), if((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)')))) >= 0, toFloat64(toUInt64OrZero(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', ''))) * arrayElement([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22], abs((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)'))))) + 1), toFloat64(toUInt64OrZero(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', ''))) / arrayElement([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22], abs((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)'))))) + 1))), if(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', '') = '', toFloat64(0), if((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)')))) >= 0, toFloat64(toUInt64OrZero(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', ''))) * arrayElement([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22], abs((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)'))))) + 1), toFloat64(toUInt64OrZero(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', ''))) / arrayElement([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22], abs((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)'))))) + 1)))) AS _v14,
  (((_v11 = 3)) AND (_v13) AND ((NOT ((length(replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', '')) <= 15 AND length(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) <= 5 AND (replaceRegexpOne(concat(extract(if(_v13, _v9, '0'), '^[+-]?([0-9]*)'), extract(if(_v13, _v9, '0'), '\\.([0-9]*)')), '^0+', '') = '' OR ((toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)')))) >= -22 AND (toInt64OrZero(extract(if(_v13, _v9, '0'), '[eE]([+-]?[0-9]+)$')) - toInt64(length(extract(if(_v13, _v9, '0'), '\\.([0-9]*)')))) <= 22))))))) AS _v15,
  ((NOT ((((_v11 = 2)) OR ((((_v11 = 3)) AND (_v13) AND (isFinite(_v14)))))))) AS _v16,
  if((_v11 = 2), _v10, _v14) AS _v17,
  ((_v16) OR ((NOT (((isFinite(_v17))))))) AS _v18
FROM (SELECT blocked_by, company_id, meta_keys, meta_nums, meta_strs, meta_types, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE (_m OR _u)
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
