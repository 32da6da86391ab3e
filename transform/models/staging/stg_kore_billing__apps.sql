-- One row per app the tap knows of: its name and kind, how the tap learned of it, and whether
-- the credentials could read its billing data this run. isLinkedTo (an array) is left out:
-- arrays differ on every warehouse, and stg_kore_billing__app_links has the same links as rows.
{{ kore_stage('apps', [
    ('botId', 'bot_id', dbt.type_string()),
    ('name', 'app_name', dbt.type_string()),
    ('status', 'app_status', dbt.type_string()),
    ('purpose', 'purpose', dbt.type_string()),
    ('type', 'app_type', dbt.type_string()),
    ('defaultLanguage', 'default_language', dbt.type_string()),
    ('createdOn', 'created_at', dbt.type_timestamp()),
    ('source', 'learned_from', dbt.type_string()),
    ('billingReadable', 'billing_readable', dbt.type_boolean()),
], keys=['botId'], required=false) }}
