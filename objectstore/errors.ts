/**
 * S3's error dialect: a code from Amazon's list, its HTTP status, and the XML body
 * `<Error><Code/><Message/><Resource/><RequestId/></Error>` (rendered in xml.ts). Every
 * refusal the endpoint makes is one of these; anything else that escapes a handler is a 500
 * InternalError (logged without headers or bodies).
 */

/** S3 error code → HTTP status, for the codes this endpoint answers with. */
export const S3_ERROR_STATUS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  MalformedXML: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  QuotaExceeded: 403,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof S3_ERROR_STATUS;

export class S3Error extends Error {
  override readonly name = 'S3Error';
  readonly status: number;
  constructor(
    readonly code: S3ErrorCode,
    message: string,
    /** Extra elements of the error body (`BucketName`, `Key`, ...). */
    readonly detail: Record<string, string> = {},
  ) {
    super(message);
    this.status = S3_ERROR_STATUS[code];
  }
}
