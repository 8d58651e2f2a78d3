/**
 * The OpenAPI v2 document in the protobuf form kube-apiserver serves at `/openapi/v2` for
 * `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`. kubectl 1.27 and
 * 1.28 ask only for this form (to learn whether a resource's PATCH takes `fieldValidation`,
 * and for client-side validation) and fail `kubectl apply` when it is missing.
 *
 * The messages are gnostic's `openapi.v2` package (the `Document`, `Schema`, `PathItem` …
 * field numbers it publishes); only the parts of Swagger 2.0 that `openApiV2Doc` produces
 * are encoded. Vendor extensions (`x-kubernetes-*`) travel as `NamedAny` with the value as
 * YAML text (JSON is YAML), which is how kube-openapi reads them back.
 */
import protobuf from 'protobufjs';

/** What clients ask for in `Accept`. */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** What the response says it is: Go's mime parser (client-go) rejects the `@` of the request form. */
export const OPENAPI_V2_PROTOBUF_RESPONSE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

type Json = Record<string, unknown>;
const { Writer } = protobuf;
type W = protobuf.Writer;

const LEN = 2;
const VARINT = 0;
const DOUBLE = 1;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(w: W, field: number, v: unknown): void {
  if (typeof v === 'string' && v !== '') w.uint32((field << 3) | LEN).string(v);
}

function bool(w: W, field: number, v: unknown): void {
  if (v === true) w.uint32((field << 3) | VARINT).bool(true);
}

function int(w: W, field: number, v: unknown): void {
  if (typeof v === 'number' && Number.isInteger(v)) w.uint32((field << 3) | VARINT).int64(v);
}

function dbl(w: W, field: number, v: unknown): void {
  if (typeof v === 'number') w.uint32((field << 3) | DOUBLE).double(v);
}

/** A length-delimited sub-message written by `body`. */
function msg(w: W, field: number, body: (w: W) => void): void {
  w.uint32((field << 3) | LEN).fork();
  body(w);
  w.ldelim();
}

/** `Any { string yaml = 2; }` */
function any(w: W, field: number, v: unknown): void {
  msg(w, field, (a) => str(a, 2, JSON.stringify(v)));
}

/** `NamedAny { name = 1; Any value = 2; }` for every `x-` key. */
function vendorExtensions(w: W, field: number, o: Json): void {
  for (const [k, v] of Object.entries(o)) {
    if (!k.startsWith('x-')) continue;
    msg(w, field, (n) => {
      str(n, 1, k);
      any(n, 2, v);
    });
  }
}

function schema(w: W, s: Json): void {
  str(w, 1, s.$ref);
  str(w, 2, s.format);
  str(w, 3, s.title);
  str(w, 4, s.description);
  if (s.default !== undefined) any(w, 5, s.default);
  dbl(w, 6, s.multipleOf);
  dbl(w, 7, s.maximum);
  bool(w, 8, s.exclusiveMaximum);
  dbl(w, 9, s.minimum);
  bool(w, 10, s.exclusiveMinimum);
  int(w, 11, s.maxLength);
  int(w, 12, s.minLength);
  str(w, 13, s.pattern);
  int(w, 14, s.maxItems);
  int(w, 15, s.minItems);
  bool(w, 16, s.uniqueItems);
  int(w, 17, s.maxProperties);
  int(w, 18, s.minProperties);
  if (Array.isArray(s.required)) for (const r of s.required) str(w, 19, r);
  if (Array.isArray(s.enum)) for (const e of s.enum) any(w, 20, e);
  const ap = s.additionalProperties;
  if (isObject(ap)) msg(w, 21, (a) => msg(a, 1, (x) => schema(x, ap)));
  else if (typeof ap === 'boolean') msg(w, 21, (a) => a.uint32((2 << 3) | VARINT).bool(ap));
  const types = typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? s.type : [];
  if (types.length > 0) msg(w, 22, (t) => types.forEach((v) => str(t, 1, v)));
  const items = s.items;
  if (isObject(items) || Array.isArray(items)) {
    const list = (Array.isArray(items) ? items : [items]).filter(isObject);
    msg(w, 23, (i) => list.forEach((x) => msg(i, 1, (y) => schema(y, x))));
  }
  if (Array.isArray(s.allOf)) for (const x of s.allOf.filter(isObject)) msg(w, 24, (y) => schema(y, x));
  const props = s.properties;
  if (isObject(props)) {
    msg(w, 25, (p) => {
      for (const [name, v] of Object.entries(props)) {
        if (!isObject(v)) continue;
        msg(p, 1, (n) => {
          str(n, 1, name);
          msg(n, 2, (x) => schema(x, v));
        });
      }
    });
  }
  str(w, 26, s.discriminator);
  bool(w, 27, s.readOnly);
  if (s.example !== undefined) any(w, 30, s.example);
  vendorExtensions(w, 31, s);
}

/** A non-body parameter: `ParametersItem{Parameter{NonBodyParameter{<in>SubSchema}}}`. */
function parameter(w: W, p: Json): void {
  const sub = p.in === 'header' ? 1 : p.in === 'formData' ? 2 : p.in === 'path' ? 4 : 3;
  msg(w, 1, (param) =>
    msg(param, 2, (nb) =>
      msg(nb, sub, (s) => {
        // Header sub-schemas have no allow_empty_value; the others share the layout below.
        bool(s, 1, p.required);
        str(s, 2, p.in);
        str(s, 3, p.description);
        str(s, 4, p.name);
        const shift = sub === 1 || sub === 4 ? 0 : 1;
        str(s, 5 + shift, p.type);
        str(s, 6 + shift, p.format);
        bool(s, 19 + shift, p.uniqueItems);
      }),
    ),
  );
}

function operation(w: W, op: Json): void {
  str(w, 5, op.operationId);
  if (Array.isArray(op.parameters)) for (const p of op.parameters.filter(isObject)) msg(w, 8, (x) => parameter(x, p));
  const responses = op.responses;
  if (isObject(responses)) {
    msg(w, 9, (rs) => {
      for (const [code, r] of Object.entries(responses)) {
        if (!isObject(r)) continue;
        msg(rs, 1, (named) => {
          str(named, 1, code);
          msg(named, 2, (value) =>
            msg(value, 1, (resp) => {
              str(resp, 1, r.description);
              const sch = r.schema;
              if (isObject(sch)) msg(resp, 2, (item) => msg(item, 1, (x) => schema(x, sch)));
            }),
          );
        });
      }
    });
  }
  vendorExtensions(w, 13, op);
}

const verbs: Record<string, number> = { get: 2, put: 3, post: 4, delete: 5, options: 6, head: 7, patch: 8 };

function pathItem(w: W, item: Json): void {
  for (const [verb, field] of Object.entries(verbs)) {
    const op = item[verb];
    if (isObject(op)) msg(w, field, (x) => operation(x, op));
  }
  if (Array.isArray(item.parameters)) for (const p of item.parameters.filter(isObject)) msg(w, 9, (x) => parameter(x, p));
  vendorExtensions(w, 10, item);
}

/** Encodes a Swagger 2.0 document (as `openApiV2Doc` builds it) as gnostic's `Document`. */
export function encodeOpenApiV2(doc: Json): Buffer {
  const w = Writer.create();
  str(w, 1, doc.swagger);
  const info = doc.info;
  if (isObject(info)) {
    msg(w, 2, (i) => {
      str(i, 1, info.title);
      str(i, 2, info.version);
    });
  }
  const paths = doc.paths;
  if (isObject(paths)) {
    msg(w, 8, (ps) => {
      for (const [path, item] of Object.entries(paths)) {
        if (!isObject(item)) continue;
        msg(ps, 2, (named) => {
          str(named, 1, path);
          msg(named, 2, (x) => pathItem(x, item));
        });
      }
    });
  }
  const definitions = doc.definitions;
  if (isObject(definitions)) {
    msg(w, 9, (ds) => {
      for (const [name, s] of Object.entries(definitions)) {
        if (!isObject(s)) continue;
        msg(ds, 1, (named) => {
          str(named, 1, name);
          msg(named, 2, (x) => schema(x, s));
        });
      }
    });
  }
  return Buffer.from(w.finish());
}
