'use strict';
// Local Step Functions service (see server.js): The Step Functions API rules the service enforces (names, ARNs, limits, page tokens) and its API error.



// ---------------------------------------------------------------------------
// API errors

class ApiError extends Error {
  constructor(type, message, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

// ---------------------------------------------------------------------------
// names and ARNs

// validName is Step Functions' rule for execution (and state machine) names.
//
// Length 1..80: the Step Functions API reference's "Name" shape has
// "min": 1, "max": 80 (botocore/data/stepfunctions/2016-11-23/service-2.json,
// the model the StartExecution page is generated from). The length counts
// characters (code points), not UTF-16 units.
//
// Forbidden characters, from StartExecution's `name` parameter
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html):
// "A name must not contain: white space; brackets < > { } [ ]; wildcard
// characters ? *; special characters " # % \ ^ | ~ ` $ & , ; : /; control
// characters (U+0000-001F, U+007F-009F)". The current text of the reference
// (e.g. the AWS SDK for Kotlin's StartExecutionRequest.name page) adds
// U+FFFE-FFFF, surrogates (U+D800-DFFF) and U+10FFFF. Violations answer
// InvalidName (400).
const FORBIDDEN_NAME_CHARS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f\ufffe\uffff\ud800-\udfff\u{10ffff}]/u;

function validName(name) {
  if (typeof name !== 'string') return false;
  const length = [...name].length;
  return length >= 1 && length <= 80 && !FORBIDDEN_NAME_CHARS.test(name);
}

// MAX_INPUT_BYTES: StartExecution's `input` is of shape "SensitiveData",
// "max": 262144 (service-2.json), and "Length constraints apply to the
// payload size, and are expressed as bytes in UTF-8 encoding" (API_StartExecution).
// A larger input answers InvalidExecutionInput (400).
const MAX_INPUT_BYTES = 262144;

// MAX_RETIRED_NAMES bounds the names of finished executions that
// retainFinished dropped but that stay taken (AWS keeps an execution's name
// 90 days): far more than a local stack starts in that time.
const MAX_RETIRED_NAMES = 100000;

const SM_ARN = /^arn:[^:]+:states:[^:]+:\d{12}:stateMachine:[^:]+$/;
const EXEC_ARN = /^arn:[^:]+:states:[^:]+:\d{12}:execution:[^:]+:[^:]+$/;

// MAX_ARN_LENGTH: executionArn and stateMachineArn are of the "Arn" shape,
// "Length Constraints: Minimum length of 1. Maximum length of 256.",
// "Required: Yes" (API_DescribeExecution, API_StopExecution,
// API_GetExecutionHistory: executionArn; API_StartExecution: stateMachineArn;
// https://docs.aws.amazon.com/step-functions/latest/apireference/).
const MAX_ARN_LENGTH = 256;
// StopExecution: "error ... Length Constraints: Minimum length of 0. Maximum
// length of 256." and "cause ... Minimum length of 0. Maximum length of
// 32768." (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html)
const MAX_STOP_ERROR = 256;
const MAX_STOP_CAUSE = 32768;
// Page tokens: "Keep all other arguments unchanged. Each pagination token
// expires after 24 hours. Using an expired pagination token will return an
// HTTP 400 InvalidToken error." (API_ListExecutions, API_GetExecutionHistory,
// `nextToken`)
const TOKEN_TTL_MS = 24 * 3600 * 1000;

// validationError is the awsJson1_0 ValidationException that AWS answers
// for a request member outside its modelled constraints ("ValidationError:
// The input fails to satisfy the constraints specified by an AWS service",
// HTTP 400, Common Errors of the Step Functions API reference; the SFN model's
// error shape is ValidationException), in the wording of AWS's validator.
function validationError(member, value, constraint) {
  const v = value === undefined || value === null ? 'null' : `'${String(value).slice(0, 64)}'`;
  return new ApiError('ValidationException', `1 validation error detected: Value ${v} at '${member}' failed to satisfy constraint: ${constraint}`);
}

// requiredArn checks a required ARN member: present ("Required: Yes"), a
// string of 1..256 characters (MAX_ARN_LENGTH) → ValidationException; then
// of the resource's ARN form → InvalidArn ("InvalidArn: The provided Amazon
// Resource Name (ARN) is not valid.", HTTP 400, in every operation's Errors).
function requiredArn(req, member, form) {
  const arn = req[member];
  if (arn === undefined || arn === null) throw validationError(member, arn, 'Member must not be null');
  if (typeof arn !== 'string') throw new ApiError('SerializationException', `${member} must be a string`);
  if (arn.length < 1) throw validationError(member, arn, 'Member must have length greater than or equal to 1');
  if (arn.length > MAX_ARN_LENGTH) throw validationError(member, arn, `Member must have length less than or equal to ${MAX_ARN_LENGTH}`);
  if (!form.test(arn)) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
  return arn;
}

// optionalString checks an optional string member's maximum length.
function optionalString(req, member, max) {
  const v = req[member];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError('SerializationException', `${member} must be a string`);
  if ([...v].length > max) throw validationError(member, '…', `Member must have length less than or equal to ${max}`);
  return v;
}

module.exports = { ApiError, FORBIDDEN_NAME_CHARS, validName, MAX_INPUT_BYTES, MAX_RETIRED_NAMES, SM_ARN, EXEC_ARN, MAX_ARN_LENGTH, MAX_STOP_ERROR, MAX_STOP_CAUSE, TOKEN_TTL_MS, validationError, requiredArn, optionalString };
