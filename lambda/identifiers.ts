/** The grammar of the AWS identifiers registry-janitor is given; anything else is refused before use. */
export const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
export const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A Command document's name, or its ARN. */
export const SSM_DOCUMENT = /^[a-zA-Z0-9_.:/-]{3,128}$/;
export const SSM_COMMAND_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ARN = /^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$/;
