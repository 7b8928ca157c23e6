SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(sum(_vs)) AS value, toInt64(1) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid, sumIf(_val, _m AND NOT _e) AS _vs
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  company_id AS _g,
  ((blocked_by = '')) AS _m,
  _v3 AS _e,
  _v2 AS _val,
  0 AS _u,
  toInt64(0) AS _um
FROM (SELECT blocked_by,
  company_id,
  time_ms,
  if((has_response), toInt64(resp_size), toInt64(0)) AS _v1,
  (toFloat64(_v1) / toFloat64(1e+06)) AS _v2,
  ((NOT (((isFinite(_v2)))))) AS _v3
FROM (SELECT blocked_by, company_id, has_response, resp_size, time_ms FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE _m
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
