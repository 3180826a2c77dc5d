package kafkachaosproxy;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A thin client of the kafka-chaos-proxy admin HTTP API (docs/admin-api.md) for Java tests:
 * add, remove and list fault rules, clear them, read coordination events with the server's
 * filters, wait for an event, health.
 *
 * <p>One file and the JDK only: {@code java.net.http} for HTTP, and a small JSON reader and
 * writer at the bottom (the JDK has none) that handles every value the API sends: objects come
 * back as {@code Map<String, Object>}, arrays as {@code List<Object>}, numbers as {@code Long}
 * or {@code Double}. Copy it into your test sources; it has no dependency to align.
 *
 * <pre>{@code
 * ChaosProxyAdmin admin = new ChaosProxyAdmin("http://localhost:9190", token);
 * long since = admin.lastSeq();
 * admin.addRule("""
 *     {"id": "sync-moved", "match": {"apis": ["SyncGroup"], "group_id": "orders"},
 *      "action": {"type": "error", "error": "NOT_COORDINATOR"},
 *      "dosage": {"max_injections": 1}}""");
 * // ... a consumer of group orders joins through the proxy ...
 * Map<String, Object> event = admin.waitForEvent(
 *     new ChaosProxyAdmin.EventQuery().api("SyncGroup").group("orders").since(since),
 *     ChaosProxyAdmin.injectedBy("sync-moved"), Duration.ofSeconds(30));
 * }</pre>
 */
public final class ChaosProxyAdmin {

    /** How often {@link #waitForEvent} asks for new events. */
    private static final Duration POLL_INTERVAL = Duration.ofMillis(100);
    /** Events asked for per request while paging (the API allows up to 10000). */
    private static final int PAGE = 500;

    private final String baseUrl;
    private final String token;
    private final HttpClient http;
    private final Duration requestTimeout;

    /** A client of the admin API at {@code baseUrl} (e.g. {@code http://localhost:9190}). */
    public ChaosProxyAdmin(String baseUrl) {
        this(baseUrl, null);
    }

    /**
     * @param baseUrl the admin API, e.g. {@code http://localhost:9190}
     * @param token the proxy's admin token (KCP_ADMIN_TOKEN), or null for a proxy without one
     */
    public ChaosProxyAdmin(String baseUrl, String token) {
        this(baseUrl, token, HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build(),
             Duration.ofSeconds(30));
    }

    public ChaosProxyAdmin(String baseUrl, String token, HttpClient http, Duration requestTimeout) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.token = token;
        this.http = http;
        this.requestTimeout = requestTimeout;
    }

    // ------------------------------------------------------------------------------- health

    /** Whether {@code GET /healthz} answers 200 with status ok (it never needs the token). */
    public boolean healthy() {
        try {
            Object body = call("GET", "/healthz", null, 200);
            return body instanceof Map && "ok".equals(((Map<?, ?>) body).get("status"));
        } catch (AdminException e) {
            return false;
        }
    }

    // -------------------------------------------------------------------------------- rules

    /**
     * Add a rule given as JSON text; returns the stored rule (with its id, assigned if the rule
     * had none, and its stats). A refused rule throws {@link AdminException} with the API's
     * message (422: what to fix; 409: the id exists).
     */
    public Map<String, Object> addRule(String ruleJson) {
        return asMap(call("POST", "/faults", ruleJson, 201));
    }

    /** Add a rule given as maps, lists, strings, numbers and booleans. */
    public Map<String, Object> addRule(Map<String, ?> rule) {
        return addRule(Json.write(rule));
    }

    /** One rule with its stats ({@code stats.matched}, {@code stats.injected}). */
    public Map<String, Object> rule(String id) {
        return asMap(call("GET", "/faults/" + encode(id), null, 200));
    }

    /** Every rule, in rule order. */
    public List<Map<String, Object>> rules() {
        return asMaps(call("GET", "/faults", null, 200));
    }

    /** Delete one rule; an unknown id throws {@link AdminException} (404). */
    public void removeRule(String id) {
        call("DELETE", "/faults/" + encode(id), null, 204);
    }

    /** Delete every rule; returns how many there were. */
    public int clearRules() {
        Object removed = asMap(call("DELETE", "/faults", null, 200)).get("removed");
        return ((Number) removed).intValue();
    }

    // ------------------------------------------------------------------------------- events

    /** The server-side filters of {@code GET /events} (all optional). */
    public static final class EventQuery {
        private String group;
        private String member;
        private String api;
        private long since;

        /** Only events of this group id. */
        public EventQuery group(String group) {
            this.group = group;
            return this;
        }

        /** Only events of this member id. */
        public EventQuery member(String member) {
            this.member = member;
            return this;
        }

        /** Only this API, by name (any case, e.g. SyncGroup) or key. */
        public EventQuery api(String api) {
            this.api = api;
            return this;
        }

        /** Only events with a larger seq (0, the default: every buffered event). */
        public EventQuery since(long since) {
            this.since = since;
            return this;
        }

        String path(long after, int limit) {
            StringBuilder query = new StringBuilder("/events?since=").append(after)
                .append("&limit=").append(limit);
            if (group != null) {
                query.append("&group=").append(encode(group));
            }
            if (member != null) {
                query.append("&member=").append(encode(member));
            }
            if (api != null) {
                query.append("&api=").append(encode(api));
            }
            return query.toString();
        }
    }

    /** The buffered events that match {@code query}, oldest first (every page of them). */
    public List<Map<String, Object>> events(EventQuery query) {
        List<Map<String, Object>> out = new ArrayList<>();
        long after = query.since;
        while (true) {
            List<Map<String, Object>> page = asMaps(call("GET", query.path(after, PAGE), null, 200));
            out.addAll(page);
            if (page.size() < PAGE) {
                return out;
            }
            after = seq(page.get(page.size() - 1));
        }
    }

    /**
     * The seq of the newest event (0 when there is none): pass it to {@link EventQuery#since} to
     * look only at what happens from now on.
     */
    public long lastSeq() {
        List<Map<String, Object>> newest = asMaps(call("GET", "/events?limit=1", null, 200));
        return newest.isEmpty() ? 0 : seq(newest.get(0));
    }

    /**
     * Poll {@code GET /events?since=} until an event that matches {@code query} and
     * {@code match} arrives; returns it. Throws {@link AdminException} when {@code timeout}
     * passes first.
     */
    public Map<String, Object> waitForEvent(EventQuery query, Predicate<Map<String, Object>> match,
                                            Duration timeout) {
        Instant deadline = Instant.now().plus(timeout);
        long after = query.since;
        while (true) {
            for (Map<String, Object> event : asMaps(call("GET", query.path(after, PAGE), null, 200))) {
                after = Math.max(after, seq(event));
                if (match.test(event)) {
                    return event;
                }
            }
            if (Instant.now().isAfter(deadline)) {
                throw new AdminException(-1, "no matching event within " + timeout + " (last seq seen: "
                                         + after + ")");
            }
            try {
                Thread.sleep(POLL_INTERVAL.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AdminException(-1, "interrupted while waiting for an event");
            }
        }
    }

    /** An event that rule {@code ruleId} injected a fault into (its {@code fault.rule}). */
    public static Predicate<Map<String, Object>> injectedBy(String ruleId) {
        return event -> {
            Object fault = event.get("fault");
            // One fault is an object; rules with `chain` give a list, one per rule that acted.
            List<?> faults = fault instanceof List ? (List<?>) fault : fault == null ? List.of() : List.of(fault);
            for (Object one : faults) {
                if (one instanceof Map && ruleId.equals(((Map<?, ?>) one).get("rule"))) {
                    return true;
                }
            }
            return false;
        };
    }

    // --------------------------------------------------------------------------------- HTTP

    /** An answer other than the one expected, or a request that could not be made. */
    public static final class AdminException extends RuntimeException {
        private final int status;

        public AdminException(int status, String message) {
            super(message);
            this.status = status;
        }

        /** The HTTP status, or -1 when there was no answer (I/O error, timeout). */
        public int status() {
            return status;
        }
    }

    private Object call(String method, String path, String jsonBody, int expected) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(requestTimeout)
            .header("Accept", "application/json");
        if (token != null && !token.isEmpty()) {
            request.header("Authorization", "Bearer " + token);
        }
        if (jsonBody != null) {
            // Every POST must say it is JSON, or the proxy answers 415.
            request.header("Content-Type", "application/json")
                .method(method, HttpRequest.BodyPublishers.ofString(jsonBody, StandardCharsets.UTF_8));
        } else {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AdminException(-1, method + " " + path + ": " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminException(-1, method + " " + path + ": interrupted");
        }
        String body = response.body();
        if (response.statusCode() != expected) {
            throw new AdminException(response.statusCode(), method + " " + path + " answered "
                                     + response.statusCode() + ": " + message(body));
        }
        return body == null || body.isBlank() ? null : Json.parse(body);
    }

    /** The API's own words: `message` (422), else `detail`, else the body. */
    private static String message(String body) {
        try {
            Object parsed = Json.parse(body);
            if (parsed instanceof Map) {
                Map<?, ?> map = (Map<?, ?>) parsed;
                Object text = map.get("message") != null ? map.get("message") : map.get("detail");
                if (text != null) {
                    return text instanceof String ? (String) text : Json.write(text);
                }
            }
        } catch (IllegalArgumentException notJson) {
            // fall through: show the body as it came
        }
        return body;
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static long seq(Map<String, Object> event) {
        return ((Number) event.get("seq")).longValue();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object value) {
        if (!(value instanceof Map)) {
            throw new AdminException(-1, "expected a JSON object, got " + Json.write(value));
        }
        return (Map<String, Object>) value;
    }

    private static List<Map<String, Object>> asMaps(Object value) {
        if (!(value instanceof List)) {
            throw new AdminException(-1, "expected a JSON array, got " + Json.write(value));
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object item : (List<?>) value) {
            out.add(asMap(item));
        }
        return out;
    }

    // --------------------------------------------------------------------------------- JSON

    /** JSON (RFC 8259) to and from Map/List/String/Long/Double/Boolean/null. */
    public static final class Json {
        private final String text;
        private int pos;

        private Json(String text) {
            this.text = text;
        }

        /** Parse one JSON value; anything else (or trailing text) throws IllegalArgumentException. */
        public static Object parse(String text) {
            Json reader = new Json(text);
            Object value = reader.value();
            reader.space();
            if (reader.pos != text.length()) {
                throw reader.error("trailing characters");
            }
            return value;
        }

        /** Write maps, iterables, strings, numbers, booleans and null as JSON. */
        public static String write(Object value) {
            StringBuilder out = new StringBuilder();
            write(value, out);
            return out.toString();
        }

        private static void write(Object value, StringBuilder out) {
            if (value == null) {
                out.append("null");
            } else if (value instanceof String) {
                quote((String) value, out);
            } else if (value instanceof Number || value instanceof Boolean) {
                out.append(value);
            } else if (value instanceof Map) {
                out.append('{');
                Iterator<? extends Map.Entry<?, ?>> entries = ((Map<?, ?>) value).entrySet().iterator();
                while (entries.hasNext()) {
                    Map.Entry<?, ?> entry = entries.next();
                    quote(String.valueOf(entry.getKey()), out);
                    out.append(':');
                    write(entry.getValue(), out);
                    if (entries.hasNext()) {
                        out.append(',');
                    }
                }
                out.append('}');
            } else if (value instanceof Iterable) {
                out.append('[');
                Iterator<?> items = ((Iterable<?>) value).iterator();
                while (items.hasNext()) {
                    write(items.next(), out);
                    if (items.hasNext()) {
                        out.append(',');
                    }
                }
                out.append(']');
            } else {
                throw new IllegalArgumentException("cannot write " + value.getClass() + " as JSON");
            }
        }

        private static void quote(String s, StringBuilder out) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': out.append("\\\""); break;
                    case '\\': out.append("\\\\"); break;
                    case '\n': out.append("\\n"); break;
                    case '\r': out.append("\\r"); break;
                    case '\t': out.append("\\t"); break;
                    default:
                        if (c < 0x20) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                }
            }
            out.append('"');
        }

        private Object value() {
            space();
            if (pos >= text.length()) {
                throw error("a value expected");
            }
            char c = text.charAt(pos);
            switch (c) {
                case '{': return object();
                case '[': return array();
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected '" + c + "'");
            }
        }

        private Map<String, Object> object() {
            Map<String, Object> out = new LinkedHashMap<>();
            pos++;
            space();
            if (peek() == '}') {
                pos++;
                return out;
            }
            while (true) {
                space();
                if (peek() != '"') {
                    throw error("a key expected");
                }
                String key = string();
                space();
                expect(':');
                out.put(key, value());
                space();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect('}');
                    return out;
                }
            }
        }

        private List<Object> array() {
            List<Object> out = new ArrayList<>();
            pos++;
            space();
            if (peek() == ']') {
                pos++;
                return out;
            }
            while (true) {
                out.add(value());
                space();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect(']');
                    return out;
                }
            }
        }

        private String string() {
            StringBuilder out = new StringBuilder();
            pos++;
            while (true) {
                if (pos >= text.length()) {
                    throw error("unterminated string");
                }
                char c = text.charAt(pos++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (pos >= text.length()) {
                    throw error("unterminated escape");
                }
                char e = text.charAt(pos++);
                switch (e) {
                    case '"': case '\\': case '/': out.append(e); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u':
                        if (pos + 4 > text.length()) {
                            throw error("short \\u escape");
                        }
                        out.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                        pos += 4;
                        break;
                    default: throw error("bad escape \\" + e);
                }
            }
        }

        private Object number() {
            int start = pos;
            boolean fraction = false;
            while (pos < text.length()) {
                char c = text.charAt(pos);
                if (c == '.' || c == 'e' || c == 'E') {
                    fraction = true;
                } else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9'))) {
                    break;
                }
                pos++;
            }
            String number = text.substring(start, pos);
            try {
                if (!fraction) {
                    try {
                        return Long.parseLong(number);
                    } catch (NumberFormatException tooLong) {
                        return Double.parseDouble(number);
                    }
                }
                return Double.parseDouble(number);
            } catch (NumberFormatException e) {
                throw error("bad number " + number);
            }
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, pos)) {
                throw error("unexpected token");
            }
            pos += word.length();
            return value;
        }

        private void space() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }

        private char peek() {
            if (pos >= text.length()) {
                throw error("unexpected end");
            }
            return text.charAt(pos);
        }

        private void expect(char c) {
            if (peek() != c) {
                throw error("'" + c + "' expected");
            }
            pos++;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("JSON: " + what + " at offset " + pos);
        }
    }
}
