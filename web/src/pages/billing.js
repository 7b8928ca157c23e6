// Billing: the Stripe connection and the ledger of usage reports. The
// page works with whatever the server has: without the billing API it
// says so instead of failing.
import { h, replace, spinner } from "../dom.js";
import { get, isAbort, ApiError } from "../api.js";

export function billingPage(main) {
  const ctl = new AbortController();
  replace(main, h("div.page", h("header.page-head", h("div", h("h1", "Billing"), h("p.sub", "Report each customer's usage to Stripe."))), h("div.card", h("div.loading", spinner()))));
  get("/v1/billing/stripe", { signal: ctl.signal }).then(
    () => replace(main.querySelector(".card"), h("p", "Billing is configured.")),
    (e) => {
      if (isAbort(e)) return;
      const missing = e instanceof ApiError && e.status === 404;
      replace(main.querySelector(".card"), h("div.empty", h("h3", missing ? "Billing is not available on this server yet" : "Could not load billing"), h("p", missing ? "This meterd build has no Stripe reporting. Meters still compute usage; bind each to a Stripe price so it is ready." : e.message)));
    },
  );
  return () => ctl.abort();
}
