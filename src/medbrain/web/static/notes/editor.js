// One-click fact insertion: the fact's text goes in at the cursor, its resource joins the citations.
(function () {
  "use strict";
  const text = document.getElementById("note-text");
  const citations = document.getElementById("note-citations");
  const count = document.getElementById("citation-count");
  if (!text || !citations) return;
  document.querySelectorAll("button.insert-fact").forEach(function (button) {
    button.addEventListener("click", function () {
      const fact = button.dataset.text + "。";
      const start = text.selectionStart ?? text.value.length;
      const end = text.selectionEnd ?? start;
      text.value = text.value.slice(0, start) + fact + text.value.slice(end);
      text.selectionStart = text.selectionEnd = start + fact.length;
      text.focus();
      const refs = new Set(citations.value.split(/\s+/).filter(Boolean));
      refs.add(button.dataset.ref);
      citations.value = Array.from(refs).sort().join(" ");
      if (count) count.textContent = String(refs.size);
    });
  });
})();
