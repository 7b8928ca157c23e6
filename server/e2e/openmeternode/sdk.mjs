// One call of a real OpenMeter SDK client against meterd, for the Go test
// in server/e2e (openmeter_test.go):
//
//   node sdk.mjs SDK METHOD [JSON ARGS...]
//
// SDK is "current" (@openmeter/sdk 1.0.0-beta.232, generated from
// OpenMeter's OpenAPI document) or "undici" (1.0.0-beta.185, the last that
// declares Node 18/20 support). The client is configured with METERD_URL
// and the admin token METERD_TOKEN, the one client that both ingests and
// queries. Prints one JSON line: {"ok": what the SDK returned} or
// {"error": what the SDK threw}.
import { OpenMeter as Current } from "@openmeter/sdk";
import { OpenMeter as Undici } from "openmeter-sdk-undici";

const [sdk, method, ...rawArgs] = process.argv.slice(2);
const baseUrl = process.env.METERD_URL;
const token = process.env.METERD_TOKEN;
const client = sdk === "current" ? new Current({ baseUrl, apiKey: token }) : new Undici({ baseUrl, token });

// Times travel as RFC 3339 strings; the SDKs take Date objects.
const args = rawArgs.map((a) =>
  JSON.parse(a, (k, v) => ((k === "from" || k === "to" || k === "time") && typeof v === "string" ? new Date(v) : v)),
);

const calls = {
  ingest: (events) => client.events.ingest(events),
  listEvents: (params) => client.events.list(params),
  listMeters: () => client.meters.list(),
  getMeter: (idOrSlug) => client.meters.get(idOrSlug),
  query: (idOrSlug, params) => client.meters.query(idOrSlug, params),
};

try {
  const result = await calls[method](...args);
  console.log(JSON.stringify({ ok: result ?? null }));
} catch (e) {
  // current: HTTPError {status, type, title, message, getField}; undici:
  // HttpError {statusCode, problem}.
  const problem = e.problem ?? (typeof e.getField === "function" ? e.__raw : undefined);
  console.log(JSON.stringify({ error: { name: e.name, message: e.message, status: e.status ?? e.statusCode, problem } }));
}
