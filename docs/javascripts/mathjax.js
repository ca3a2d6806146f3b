// MathJax settings for the rendered notebooks, whose markdown cells write
// TeX between $ signs; code blocks are never typeset.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
  },
  options: { skipHtmlTags: ["script", "noscript", "style", "textarea", "pre", "code"] },
};
document$.subscribe(() => {
  if (window.MathJax.typesetPromise) {
    MathJax.typesetPromise();
  }
});
