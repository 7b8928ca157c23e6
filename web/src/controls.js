// The life-cycle controls meters and governance rules share, each over
// the thing's API path (/v1/meters/{id}, /v1/governance/rules/{id}): the
// on/off switch and renaming (PATCH), and archiving (POST .../archive,
// after a confirmation). Each calls done() when the change is over,
// failed or not, so the page shows what the server now holds.
import { h, icon, toast, confirmDialog } from "./dom.js";
import { patch, post } from "./api.js";

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
export function renamer({ path, name, hidden = false, what, done }) {
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
export function archiveButton({ path, name, what, body, disabled = false, done }) {
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
