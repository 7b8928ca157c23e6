// The life-cycle controls meters and governance rules share, each over
// the thing's API path (/v1/meters/{id}, /v1/governance/rules/{id}): the
// on/off switch and renaming (PATCH), and archiving (POST .../archive,
// after a confirmation), and the head of their pages that holds them.
// Each calls done() when the change is over, failed or not, so the page
// shows what the server now holds.
import { h, icon, toast, confirmDialog, statusBadge, fmtAgo, pageHead, replace, spinner } from "./dom.js";
import { get, patch, post, isAbort } from "./api.js";
import { setObservedKeys } from "./keys.js";

// formFrame is the frame of a New and a New version page: it fetches the
// keys seen in events (for completion) and, for a version, the thing it
// is added to (path; missing titles the page when there is none), then
// calls build(thing or null, page, signal), which returns its cleanups.
// It returns the page's cleanup.
export function formFrame(main, path, missing, build) {
  const ctl = new AbortController();
  const cleanups = [() => ctl.abort()];
  const page = h("div.page.wide");
  replace(main, page, h("div.loading", spinner()));
  get("/v1/events/stats", { signal: ctl.signal }).then(setObservedKeys, () => {});
  (async () => {
    let thing = null;
    if (path) {
      try {
        thing = await get(path, { signal: ctl.signal });
      } catch (e) {
        if (!isAbort(e)) replace(main, h("div.page", h("h1", missing), h("p.form-error", e.message)));
        return;
      }
    }
    replace(main, page);
    cleanups.push(...build(thing, page, ctl.signal));
  })();
  return () => cleanups.forEach((f) => f());
}

// lifecycleHead is the top of a meter's or rule's page: the way back, the
// name (renamable), its status and a line about it (about); the switch,
// New version and Archive; an archived one says so under it (with when,
// from hist). kind says what differs between meters and rules: what,
// page(id) and path(id) (the page's address and the API's), back
// ([href, label]), on ({label, states: [on, off], messages: [on, off]}),
// archiveBody and archivedNote.
export function lifecycleHead(kind, thing, { hist, about, done }) {
  const { what, back, on, archiveBody, archivedNote } = kind;
  const path = kind.path(thing.id), href = kind.page(thing.id);
  const archived = thing.status === "archived";
  const active = thing.status === "active";
  const sw = onOffSwitch({ path, active, disabled: archived, label: on.label, messages: on.messages, done });
  const { heading, button } = renamer({ path, name: thing.name, hidden: archived, what, done });
  return [
    pageHead({
      back,
      title: h("div.title-row", heading, button, statusBadge(thing.status)),
      sub: h("p.sub.mono", thing.id, h("span.dim", about)),
      actions: h(
        "div.head-actions",
        h("label.switch-row", sw, h("span", archived ? "Archived" : active ? on.states[0] : on.states[1])),
        archived ? null : h("a.btn.primary", { href: href + "/version" }, icon("plus"), "New version"),
        archived ? null : archiveButton({ path, name: thing.name, what, body: archiveBody, done }),
      ),
    }),
    archived ? h("div.callout.archived-note", icon("archive", 16), h("p", h("b", "Archived " + fmtAgo(hist.changes.at(-1)?.at) + ". "), archivedNote)) : null,
  ];
}

// onOffSwitch is a switch for {active}; messages are the toasts for on
// and off.
export function onOffSwitch({ path, active, disabled = false, label, messages, done }) {
  const sw = h(
    "button.switch",
    {
      type: "button",
      role: "switch",
      "aria-checked": String(active),
      "aria-label": label,
      disabled,
      onclick: async (e) => {
        e.stopPropagation(); // in a clickable row
        sw.disabled = true;
        try {
          await patch(path, { active: !active });
          toast(active ? messages[1] : messages[0]);
        } catch (err) {
          toast(err.message, "err");
        }
        done();
      },
    },
    h("span.knob"),
  );
  return sw;
}

// renamer is a heading with a Rename button that turns it into an input:
// Enter or leaving it saves, Escape cancels. Returns {heading, button}.
function renamer({ path, name, hidden = false, what, done }) {
  const heading = h("h1.meter-name", name);
  const button = h("button.btn.ghost.small", { type: "button", hidden, onclick: rename, "aria-label": `Rename the ${what}` }, "Rename");
  function rename() {
    const input = h("input.rename", { type: "text", value: name, maxlength: 200, "aria-label": what[0].toUpperCase() + what.slice(1) + " name" });
    let finished = false; // Enter, then the blur of the removed input
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      if (save && input.value.trim() && input.value.trim() !== name) {
        try {
          await patch(path, { name: input.value.trim() });
          toast("Renamed");
        } catch (e) {
          toast(e.message, "err");
        }
      }
      done();
    };
    input.addEventListener("keydown", (e) => (e.key === "Enter" ? finish(true) : e.key === "Escape" && finish(false)));
    input.addEventListener("blur", () => finish(true));
    heading.replaceWith(input);
    button.hidden = true;
    input.focus();
    input.select();
  }
  return { heading, button };
}

// archiveButton archives after a confirmation that says what it means.
function archiveButton({ path, name, what, body, disabled = false, done }) {
  return h(
    "button.btn.danger-ghost",
    {
      type: "button",
      disabled,
      onclick: async () => {
        const ok = await confirmDialog({ title: `Archive “${name}”?`, danger: true, confirm: "Archive " + what, body });
        if (!ok) return;
        try {
          await post(path + "/archive");
          toast(what[0].toUpperCase() + what.slice(1) + " archived");
        } catch (e) {
          toast(e.message, "err");
        }
        done();
      },
    },
    icon("archive", 15),
    "Archive",
  );
}
