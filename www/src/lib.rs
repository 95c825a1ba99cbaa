//! natter-web (filled in by the browser issue).
