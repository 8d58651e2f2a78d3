/**
 * S3's XML bodies, built and parsed with fast-xml-parser. Responses are plain objects in
 * S3's element names; requests (DeleteObjects, CompleteMultipartUpload) are parsed with
 * entities off and checked field by field, so a malformed body is `MalformedXML`.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { S3Error } from './errors.js';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, format: false });
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: true, htmlEntities: false, trimValues: true, isArray: (name) => ['Object', 'Part'].includes(name) });

/** `<?xml ...?><Root xmlns=S3>...body...</Root>` */
export function xmlDocument(root: string, body: Record<string, unknown>, withNamespace = true): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: withNamespace ? { '@_xmlns': NS, ...body } : body }) as string}`;
}

export function errorXml(code: string, message: string, resource: string, requestId: string, detail: Record<string, string>): string {
  return xmlDocument('Error', { Code: code, Message: message, ...detail, Resource: resource, RequestId: requestId }, false);
}

function parse(body: Buffer, root: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parser.parse(body.toString('utf8'), true);
  } catch {
    throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
  }
  const top = (doc as Record<string, unknown> | undefined)?.[root];
  if (typeof top !== 'object' || top === null) throw new S3Error('MalformedXML', `the body must be a <${root}> document`);
  return top as Record<string, unknown>;
}

/** `<Delete><Object><Key/></Object>...<Quiet/></Delete>` */
export function parseDelete(body: Buffer): { keys: string[]; quiet: boolean } {
  const top = parse(body, 'Delete');
  const objects = (top.Object ?? []) as unknown[];
  const keys = objects.map((o) => {
    const key = (o as Record<string, unknown> | undefined)?.Key;
    if (typeof key !== 'string' || key === '') throw new S3Error('MalformedXML', 'every <Object> needs a <Key>');
    return key;
  });
  if (keys.length === 0 || keys.length > 1000) throw new S3Error('MalformedXML', 'a Delete names 1 to 1000 objects');
  return { keys, quiet: String(top.Quiet ?? '').toLowerCase() === 'true' };
}

/** `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...` */
export function parseComplete(body: Buffer): { number: number; etag: string }[] {
  const top = parse(body, 'CompleteMultipartUpload');
  const parts = ((top.Part ?? []) as unknown[]).map((p) => {
    const r = (p ?? {}) as Record<string, unknown>;
    const number = Number(r.PartNumber);
    const etag = String(r.ETag ?? '').replace(/"/g, '').replace(/&quot;/g, '');
    if (!Number.isInteger(number) || number < 1 || number > 10000 || etag === '') throw new S3Error('MalformedXML', 'every <Part> needs a <PartNumber> (1-10000) and an <ETag>');
    return { number, etag };
  });
  if (parts.length === 0) throw new S3Error('MalformedXML', 'a CompleteMultipartUpload names at least one part');
  return parts;
}
