-- Split a CloudTrail S3 delivery file ({"Records": [...]}) into one Fluent
-- Bit record per event: a Lua filter that returns an array of tables emits
-- each as its own record. Anything else passes unchanged.
function split_records(tag, timestamp, record)
    local records = record["Records"]
    if type(records) ~= "table" then
        return 0, timestamp, record
    end
    -- 2: records changed, timestamp kept.
    return 2, timestamp, records
end
