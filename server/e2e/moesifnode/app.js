// A tiny Express API instrumented with the real moesif-nodejs middleware,
// pointed at meterd through baseUri. server/e2e starts it and calls it.
'use strict';
const express = require('express');
const moesif = require('moesif-nodejs');

const app = express();
app.use(express.json());
app.use(moesif({
  applicationId: process.env.METERD_INGEST_KEY,
  baseUri: process.env.METERD_URL, // e.g. http://127.0.0.1:8080 (no /v1)
  batchSize: 5,
  batchMaxTime: 600, // the middleware refuses 500 ms or less
  identifyUser: (req) => req.headers['x-user-id'],
  identifyCompany: (req) => req.headers['x-company-id'],
  getMetadata: (req) => ({
    plan: req.headers['x-plan'] || null,
    tokens: Number(req.headers['x-tokens'] || 0),
    e2e: true,
  }),
  callback: (err) => { if (err) console.error('moesif send failed:', err.message || err); },
}));

app.get('/v1/search', (req, res) => res.json({ q: req.query.q || '', hits: [1, 2, 3] }));
app.post('/v1/orders', (req, res) => res.status(201).json({ id: 'ord_1', items: req.body.items || [] }));
app.get('/v1/users/:id', (req, res) => {
  if (req.params.id === 'missing') return res.status(404).json({ error: 'not found' });
  res.json({ id: req.params.id });
});
app.get('/v1/limited', (req, res) => res.status(429).set('Retry-After', '1').json({ error: 'slow down' }));

const server = app.listen(Number(process.env.APP_PORT || 0), '127.0.0.1', () => {
  console.log('READY ' + server.address().port);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
