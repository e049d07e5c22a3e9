// Text helpers shared by the page's modules.

/**
 * Lowercases and strips diacritics, for search.
 * @param {unknown} s
 */
export function fold(s) {
  return String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}
