// meterd's console: a hash-routed single page over the admin API.
import "./fonts.css";
import "./style.css";
import { h, icon, replace } from "./dom.js";
import { session, setOnUnauthorized } from "./api.js";
import { signIn } from "./pages/signin.js";
import { metersPage } from "./pages/meters.js";
import { meterForm } from "./pages/meterform.js";
import { meterPage } from "./pages/meter.js";
import { eventsPage } from "./pages/events.js";
import { billingPage } from "./pages/billing.js";
import { governancePage } from "./pages/governance.js";
import { ruleForm } from "./pages/ruleform.js";
import { rulePage } from "./pages/rule.js";
import { governedCustomerPage } from "./pages/govcustomer.js";

const routes = [
  [/^\/?$/, () => metersPage, "meters"],
  [/^\/meters$/, () => metersPage, "meters"],
  [/^\/meters\/new$/, () => meterForm, "meters"],
  [/^\/meters\/([\w-]+)\/version$/, () => meterForm, "meters", "id"],
  [/^\/meters\/([\w-]+)$/, () => meterPage, "meters", "id"],
  [/^\/events$/, () => eventsPage, "events"],
  [/^\/billing$/, () => billingPage, "billing"],
  [/^\/governance$/, () => governancePage, "governance"],
  [/^\/governance\/new$/, () => ruleForm, "governance"],
  [/^\/governance\/rules\/([\w-]+)\/version$/, () => ruleForm, "governance", "id"],
  [/^\/governance\/rules\/([\w-]+)$/, () => rulePage, "governance", "id"],
  [/^\/governance\/customers$/, () => governedCustomerPage, "governance"],
  [/^\/governance\/customers\/(company|user)\/(.+)$/, () => governedCustomerPage, "governance", "kind", "id"],
];

const app = document.getElementById("app");
let cleanup = null;

function shell(section) {
  const link = (name, href, label) =>
    h("a.nav-link", { href, "aria-current": section === name ? "page" : false }, icon(name, 18), h("span", label));
  const main = h("main.main", { id: "main", tabindex: "-1" });
  const layout = h(
    "div.layout",
    h("a.skip", { href: "#main", onclick: (e) => (e.preventDefault(), main.focus()) }, "Skip to content"),
    h(
      "aside.sidebar",
      h("a.brand", { href: "#/meters", "aria-label": "meterd home" }, h("span.logo", icon("meters", 18)), h("span", "meterd")),
      h("nav.nav", { "aria-label": "Main" }, link("meters", "#/meters", "Meters"), link("events", "#/events", "Events"), link("governance", "#/governance", "Governance"), link("billing", "#/billing", "Billing")),
      h(
        "div.me",
        h("div.me-who", h("span.avatar", (session.actor || "A").slice(0, 1).toUpperCase()), h("span.me-name", session.actor || "admin")),
        h("button.icon-btn", { type: "button", title: "Sign out", "aria-label": "Sign out", onclick: signOut }, icon("out")),
      ),
    ),
    main,
  );
  return { layout, main };
}

function signOut() {
  session.clear();
  location.hash = "#/";
  render();
}

setOnUnauthorized(() => {
  session.clear();
  render("Your session ended: the admin token was refused. Sign in again.");
});

function render(notice) {
  cleanup?.();
  cleanup = null;
  document.querySelector(".backdrop")?.remove();
  if (!session.token) {
    document.title = "Sign in · meterd";
    replace(app, signIn(() => render(), notice));
    return;
  }
  const path = decodeURIComponent(location.hash.replace(/^#/, "").split("?")[0]);
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  let found = null, params = {};
  for (const [re, page, section, ...names] of routes) {
    const m = path.match(re);
    if (m) {
      found = [page(), section];
      names.forEach((n, i) => (params[n] = m[i + 1]));
      break;
    }
  }
  const section = found ? found[1] : "";
  document.title = (section ? section[0].toUpperCase() + section.slice(1) + " · " : "") + "meterd";
  const { layout, main } = shell(section);
  replace(app, layout);
  if (!found) {
    main.append(h("div.page", h("h1", "Not found"), h("p", "There is no page at ", h("code", path), ". ", h("a", { href: "#/meters" }, "Go to meters"))));
    return;
  }
  cleanup = found[0](main, params, query) || null;
  window.scrollTo(0, 0);
}

window.addEventListener("hashchange", () => render());
render();
