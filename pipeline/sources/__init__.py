"""Where data comes from: export validation (ingest), helpdesk readers (Zendesk, ServiceNow, Kaggle) and the simulator."""
