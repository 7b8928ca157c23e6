SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, _b, 0)) AS bucket, if(_s >= 2, _g, '') AS grp,
  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(maxIf(_vx, _valid > 0)) AS value, toInt64(sum(_valid) > 0) AS has_value,
  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,
  toInt64((SELECT count() FROM events WHERE time_ms >= 0 AND time_ms < 7200000)) AS scanned
FROM (SELECT _b, _g, countIf(_m) AS _n, countIf(_m AND _e) AS _errs, countIf(_u) AS _unc, groupBitOr(toUInt64(_um)) AS _umask, countIf(_m AND NOT _e) AS _valid, maxIf(_val, _m AND NOT _e) AS _vx
FROM (SELECT (time_ms - (time_ms % toInt64(3600000))) AS _b,
  user_id AS _g,
  _v2 AS _m,
  0 AS _e,
  _v3 AS _val,
  0 AS _u,
  toInt64(0) AS _um
FROM (SELECT time_ms,
  user_id,
  (((((verb = 'GET')))) OR ((((verb = 'POST'))))) AS _v1,
  toFloat64(toInt64(duration_ms)) AS _v3,
  (((blocked_by = '')) AND (_v1)) AS _v2
FROM (SELECT blocked_by, duration_ms, time_ms, user_id, verb FROM events WHERE time_ms >= 0 AND time_ms < 7200000 AND (blocked_by = ''))))
WHERE _m
GROUP BY _b, _g)
ARRAY JOIN [0, 1, 2] AS _s
GROUP BY _s, bucket, grp
ORDER BY set_, has_value DESC, value DESC, events DESC, grp
LIMIT 10 BY set_
