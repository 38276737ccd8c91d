//! The ports on real services: DynamoDB (`dynamo`), SQS (`sqs`), Stripe (`stripe`), and the AWS
//! SDK's configuration (`aws`). The only code of the core that sees an AWS or Stripe type.

pub mod aws;
pub mod dynamo;
pub mod sqs;
pub mod stripe;
