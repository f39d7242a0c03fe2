# cmake -DDIR=tools/trace_viewer -DOUT=trace_viewer_assets.h -P embed.cmake
# Writes a header holding the trace viewer's HTML, CSS and JS, and those of oko serve's
# chat page (chat.*), as C++ raw string literals, so that `oko trace --html` writes one
# self-contained file and `oko serve` serves its page, needing nothing at run time.
set(text "// Generated from tools/trace_viewer by embed.cmake: edit those files, not this one.\n")
string(APPEND text "#pragma once\n\nnamespace oko::viewer {\n")
foreach(pair "kHtml=viewer.html" "kCss=viewer.css" "kJs=viewer.js"
             "kChatHtml=chat.html" "kChatCss=chat.css" "kChatJs=chat.js")
  string(REPLACE "=" ";" parts "${pair}")
  list(GET parts 0 name)
  list(GET parts 1 file)
  file(READ "${DIR}/${file}" content)
  string(APPEND text "inline constexpr char ${name}[] = R\"OKOVIEW(${content})OKOVIEW\";\n")
endforeach()
string(APPEND text "}  // namespace oko::viewer\n")
file(WRITE "${OUT}" "${text}")
