SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(sum(_vs)) AS value, toInt64(1) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid, sumIf(_val, _m AND NOT _e) AS _vs
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  company_id AS _g,
  _v6 AS _m,
  0 AS _e,
  _v8 AS _val,
  0 AS _u,
  toInt64(0) AS _um
FROM (SELECT company_id,
  time_ms,
  if((has_response), toInt64(status), toInt64(0)) AS _v1,
  negate(toInt64(req_size)) AS _v3,
  (((((toInt64(100) = 0))))) AS _v4,
  (toInt64(req_size) * toInt64(2)) AS _v7,
  modulo(_v1, if(toInt64(100) = 0 OR toInt64(100) = -1, toInt64(1), toInt64(100))) AS _v2,
  toFloat64((_v7 + toInt64(1))) AS _v8,
  (((((_v2 = toInt64(4))))) OR ((_v3 < toInt64(0)))) AS _v5,
  (((blocked_by = '')) AND ((NOT (_v4))) AND (_v5)) AS _v6
FROM (SELECT blocked_by, company_id, has_response, req_size, status, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE _m
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
