// jinja-oracle: render a chat template with llama.cpp's own Jinja engine (common/jinja), the
// reference our C interpreter (sy-jinja) is diffed against. Test-only, never part of the product.
//
//   jinja-oracle --template FILE --context CTX.json
//
// Prints the rendered text to stdout byte-exact (no added newline), exit 0; on any error prints
// one line to stderr, exit 1. The context object is handed to the template as its globals as-is
// (no message normalisation). What chat.cpp does at the engine level is mirrored:
//   - the two source patches common_chat_templates_init applies before building a template;
//   - the template is built as common_chat_template does (lexer with its fixed chat settings,
//     parser, capability probe);
//   - preserve_reasoning / reasoning_effort in the context set the same aliases as
//     common_chat_template_direct_apply;
//   - globals are marked as input (mark_input = true, the default there).
// SY_JINJA_NOW (unix seconds), when set, is the time strftime_now sees (it uses localtime(), so
// callers wanting a fixed string also fix TZ).

#include "jinja/caps.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "jinja/value.h"
#include "json.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

static std::string read_file(const char * path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw std::runtime_error(std::string("cannot read ") + path + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static void replace_all(std::string & s, const std::string & from, const std::string & to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

// The two workarounds common_chat_templates_init applies to a template's source (chat.cpp).
static void patch_source(std::string & src) {
  if (src.find("<|channel|>") != std::string::npos &&
      src.find("in message.content or") != std::string::npos) {
    replace_all(src,
                "{%- if \"<|channel|>analysis<|message|>\" in message.content or "
                "\"<|channel|>final<|message|>\" in message.content %}",
                "{%- if false %}");
  }
  if (src.find("[TOOL_CALLS]") != std::string::npos &&
      src.find("if (message['content'] is none or") != std::string::npos) {
    replace_all(src,
                "{%- if (message['content'] is none or message['content'] == '' or "
                "message['content']|length == 0) and (message['tool_calls'] is not defined or "
                "message['tool_calls'] is none or message['tool_calls']|length == 0) %}",
                "{%- if false %}");
  }
}

static std::string render(const std::string & tmpl_path, const std::string & ctx_path, bool patch) {
  std::string src = read_file(tmpl_path.c_str());
  if (patch) {
    patch_source(src);
  }
  common_json inp = common_json::parse(read_file(ctx_path.c_str()));
  if (!inp.is_object()) {
    throw std::runtime_error("context is not a JSON object");
  }

  // as common_chat_template's constructor
  jinja::lexer lexer;
  jinja::lexer_result lexed = lexer.tokenize(src);
  jinja::program prog = jinja::parse_from_tokens(lexed);
  (void) jinja::caps_get(prog);

  // as common_chat_template_direct_apply_impl
  jinja::context ctx(lexed.source);
  const char * now = std::getenv("SY_JINJA_NOW");
  if (now && *now) {
    char * end = nullptr;
    long long t = std::strtoll(now, &end, 10);
    if (*end) {
      throw std::runtime_error("SY_JINJA_NOW is not an integer");
    }
    ctx.current_time = (std::time_t) t;
  }
  if (inp.contains("preserve_reasoning") && inp["preserve_reasoning"].is_boolean()) {
    jinja::caps_apply_preserve_reasoning(ctx, inp["preserve_reasoning"].get<bool>());
  }
  if (inp.contains("reasoning_effort") && inp["reasoning_effort"].is_string() &&
      !inp["reasoning_effort"].empty()) {
    jinja::caps_apply_reasoning_effort(ctx, inp["reasoning_effort"].get<std::string>());
  }
  jinja::global_from_json(ctx, inp, true);

  jinja::runtime runtime(ctx);
  const jinja::value results = runtime.execute(prog);
  auto parts = jinja::runtime::gather_string_parts(results);
  return parts->as_string().str();
}

// One line: whitespace runs collapsed; llama.cpp's "... Error: what" tail moved to the front.
static int fail(const std::string & msg) {
  std::string line;
  for (char c : msg) {
    bool ws = c == '\n' || c == '\r' || c == ' ' || c == '\t';
    if (!ws) {
      line += c;
    } else if (!line.empty() && line.back() != ' ') {
      line += ' ';
    }
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == '-')) {
    line.pop_back();
  }
  size_t err = line.rfind("Error: ");
  if (err != std::string::npos && err > 0) {
    line = line.substr(err) + " [" + line.substr(0, err) + "]";
  }
  if (line.size() > 300) {
    line.resize(300);
  }
  std::fprintf(stderr, "jinja-oracle: %s\n", line.c_str());
  return 1;
}

int main(int argc, char ** argv) {
  std::string tmpl, ctx;
  bool patch = true;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--template" && i + 1 < argc) {
      tmpl = argv[++i];
    } else if (a == "--context" && i + 1 < argc) {
      ctx = argv[++i];
    } else if (a == "--no-patch") {
      patch = false;
    } else {
      return fail("usage: jinja-oracle --template FILE --context CTX.json [--no-patch]");
    }
  }
  if (tmpl.empty() || ctx.empty()) {
    return fail("usage: jinja-oracle --template FILE --context CTX.json [--no-patch]");
  }
  std::string out;
  try {
    out = render(tmpl, ctx, patch);
  } catch (const std::exception & e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown exception");
  }
  if (!out.empty() && std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) {
    return fail("write failed");
  }
  if (std::fflush(stdout) != 0) {
    return fail("write failed");
  }
  return 0;
}
