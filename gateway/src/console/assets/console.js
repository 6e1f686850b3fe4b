// The console's only script: VM search as you type, and a request's steps kept current over
// Server-Sent Events. Pages work without it (names typed by hand, reload to refresh).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const search = document.querySelector("[data-search]");
  if (search) {
    const results = document.getElementById("vm-results");
    const chosen = document.getElementById("vms");
    let timer = null;
    let asked = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const mine = ++asked;
        const url = search.dataset.search + "?q=" + encodeURIComponent(search.value);
        const answer = await fetch(url, { credentials: "same-origin" });
        if (mine === asked) results.innerHTML = await answer.text(); // a slower earlier answer never wins
      }, 200);
    });
    results.addEventListener("click", (e) => {
      const add = e.target.closest("[data-add]");
      if (!add) return;
      const names = chosen.value.split(/[\s,]+/).filter(Boolean);
      if (!names.includes(add.dataset.add)) names.push(add.dataset.add);
      chosen.value = names.join("\n");
      add.disabled = true;
      add.firstChild.textContent = "Added ";
    });
  }

  const live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    const events = new EventSource(live.dataset.live);
    events.addEventListener("steps", (e) => { live.innerHTML = e.data; });
    events.addEventListener("end", (e) => { live.innerHTML = e.data; events.close(); });
  }
});
