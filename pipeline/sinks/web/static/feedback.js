// The ticket page's feedback buttons: post the verdict as JSON (the API takes JSON only, so no
// cross-site HTML form can post it), remember the agent's name on this browser, reload to show it.
(function () {
  const form = document.getElementById("feedback");
  if (!form) return;
  const status = form.querySelector(".status");
  const agent = form.elements.agent;
  agent.value = window.localStorage.getItem("csat-triage-agent") || "";
  form.addEventListener("submit", (event) => event.preventDefault());
  form.querySelectorAll("button[data-verdict]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!agent.reportValidity()) return;
      status.textContent = "Saving...";
      try {
        const response = await fetch(form.dataset.url, {
          method: "POST",
          credentials: "same-origin",
          headers: {"Content-Type": "application/json"},
          body: JSON.stringify({verdict: button.dataset.verdict, agent: agent.value.trim(), note: form.elements.note.value}),
        });
        if (response.status === 201) {
          window.localStorage.setItem("csat-triage-agent", agent.value.trim());
          window.location.reload();
        } else {
          status.textContent = response.status === 401 ? "Your session has ended: log in again." : `Not saved (HTTP ${response.status}).`;
        }
      } catch (error) {
        status.textContent = "Not saved: the server did not answer.";
      }
    });
  });
})();
