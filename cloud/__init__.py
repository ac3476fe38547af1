"""Cloud operations on AWS that are not a pipeline: blue/green endpoint deployments, Batch Transform, the
monitoring pipeline and its schedule, the CloudFormation template and an account's bootstrap. Beside
`pipelines/sagemaker/`, which compiles, upserts and starts pipelines; every request goes through aws/requests.py."""
