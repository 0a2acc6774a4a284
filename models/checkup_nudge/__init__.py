"""特定健診 reminder targeting (那覇市 pilot): multi-arm uplift from randomised campaigns."""
