namespace Sluice.Connectors.Redis;

/// <summary>
/// The Lua script of the generic <c>redis</c> sink: one batch, atomically. Each row key has a position key beside it
/// (<c>&lt;key&gt;:_pos</c>) holding the highest source position applied to it; an entry at or below it is not applied
/// again, so a replayed row, however the batch around it is cut, never counts twice nor puts back an older value (as
/// <c>redis_realtime</c>'s seen-bitmap counts each event once). Positions are fixed-width text, compared as text.
/// KEYS: per row key, the key and its position key; for a change stream (<see cref="RedisSinkKeys"/>) then the set of
/// the keys this sink wrote and the key holding the position of the last truncate. ARGV: mode, ttl seconds (0: none),
/// keys, the position of a truncate that ends the run ('' none); then per key the number of entries and per entry its
/// position ('' when the table has none: always applied), its operation ('u' write, 'd' delete) and, for a write, by
/// mode the increment (counter), the value (set) or the field count and field/value pairs (hash). An entry at or below
/// the last truncate is older than it and not applied. Returns the number of keys changed.
/// </summary>
internal static class RedisSinkScript
{
    public const string Source = """
        local mode = ARGV[1]
        local ttl = tonumber(ARGV[2])
        local n = tonumber(ARGV[3])
        local truncate = ARGV[4]
        local own = KEYS[2 * n + 1]
        local truncKey = KEYS[2 * n + 2]
        local floor = false
        if truncKey then floor = redis.call('GET', truncKey) end
        local p = 5
        local changed = 0
        for i = 1, n do
          local key = KEYS[2 * i - 1]
          local posKey = KEYS[2 * i]
          local entries = tonumber(ARGV[p])
          p = p + 1
          local stored = redis.call('GET', posKey)
          local top = stored
          local applied = false
          local sum = 0
          for e = 1, entries do
            local pos = ARGV[p]
            local op = ARGV[p + 1]
            p = p + 2
            local fresh = pos == '' or ((not stored or pos > stored) and (not floor or pos > floor))
            if fresh and pos ~= '' and (not top or pos > top) then top = pos end
            if op == 'd' then
              if fresh then
                redis.call('DEL', key)
                if own then redis.call('SREM', own, key) end
                applied = true
              end
            elseif mode == 'counter' then
              if fresh then sum = sum + tonumber(ARGV[p]); applied = true end
              p = p + 1
            elseif mode == 'set' then
              if fresh then
                redis.call('SET', key, ARGV[p])
                if own then redis.call('SADD', own, key) end
                applied = true
              end
              p = p + 1
            else
              local nf = tonumber(ARGV[p])
              if fresh then
                redis.call('DEL', key)
                if nf > 0 then redis.call('HSET', key, unpack(ARGV, p + 1, p + 2 * nf)) end
                if own then redis.call('SADD', own, key) end
                applied = true
              end
              p = p + 1 + 2 * nf
            end
          end
          if applied then
            changed = changed + 1
            if mode == 'counter' then redis.call('INCRBY', key, sum) end
            if top and top ~= stored then redis.call('SET', posKey, top) end
            if ttl > 0 then
              redis.call('EXPIRE', key, ttl)
              if top then redis.call('EXPIRE', posKey, ttl) end
            end
          end
        end
        if truncate ~= '' and own and (not floor or truncate > floor) then
          -- Only the keys this sink wrote for the table (its set): nothing else in the database is touched.
          local members = redis.call('SMEMBERS', own)
          for m = 1, #members, 500 do
            local chunk = {}
            for j = m, math.min(m + 499, #members) do
              chunk[#chunk + 1] = members[j]
              chunk[#chunk + 1] = members[j] .. ':_pos'
            end
            redis.call('DEL', unpack(chunk))
          end
          redis.call('DEL', own)
          redis.call('SET', truncKey, truncate)
          changed = changed + #members
        end
        return changed
        """;
}
