// Sign in with the admin token that 'meterd serve' prints.
import { h, icon } from "../dom.js";
import { get, session, ApiError } from "../api.js";

export function signIn(done, notice) {
  const token = h("input#token", { type: "password", name: "token", autocomplete: "current-password", required: true, autofocus: true, placeholder: "paste the admin token" });
  const actor = h("input#actor", { type: "text", name: "actor", autocomplete: "name", maxlength: 200, placeholder: "e.g. Ada Lovelace", value: session.actor });
  const remember = h("input#remember", { type: "checkbox" });
  const err = h("p.form-error", { role: "alert", hidden: !notice }, notice || "");
  const btn = h("button.btn.primary.block", { type: "submit" }, "Sign in");
  const form = h(
    "form.signin-card",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        btn.disabled = true;
        err.hidden = true;
        try {
          await get("/v1/meters", { token: token.value.trim() });
          session.save(token.value.trim(), actor.value.trim(), remember.checked);
          done();
        } catch (e) {
          err.hidden = false;
          err.textContent = e instanceof ApiError && e.status === 401 ? "That token was refused. Use the admin token (not the ingest key) that meterd printed when it started." : "Could not reach meterd: " + e.message;
          btn.disabled = false;
          token.select();
        }
      },
    },
    h("div.brand.big", h("span.logo", icon("meters", 20)), h("span", "meterd")),
    h("h1", "Sign in to your console"),
    h("p.lead", "Usage billing from your API traffic, with every number auditable."),
    err,
    h("label.field", { for: "token" }, h("span", "Admin token"), token, h("small", "Printed by ", h("code", "meterd serve"), " at start: your ", h("code", "METERD_ADMIN_TOKEN"), " if you set one, else the generated token kept in ", h("code", "keys.json"), " in its data directory.")),
    h("label.field", { for: "actor" }, h("span", "Your name"), actor, h("small", "Recorded in the audit trail of every change you make.")),
    h("label.check", remember, h("span", "Keep me signed in on this device")),
    btn,
  );
  return h("div.signin", form);
}
