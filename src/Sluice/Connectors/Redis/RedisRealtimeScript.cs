namespace Sluice.Connectors.Redis;

/// <summary>
/// The Lua script that applies one batch atomically. Each event sets its bit in a seen-bitmap shard first; only an
/// event whose bit was clear counts (count key, minute bucket), so a replayed event never counts twice. The bits of a
/// shard are set by one BITFIELD per thousand events, not one SETBIT each: a call from Lua costs Redis more than the
/// bit. SET u1 returns the old bit, and a second SET of the same bit in one call returns 1, as a second SETBIT would;
/// a thousand events are 4,000 arguments, inside Lua's limit of 8,000 unpacked values.
/// The latest event per entity replaces <c>{entity}:last:{id}</c> only when it is newer (event time, then event id).
/// Then the window ZSET is rebuilt from the minute buckets.
/// ARGV: shard groups, lasts, window key index, window ttl, bucket ttl, last ttl, window buckets, time field, id field,
/// entities, then per entity (count key, member), per shard group (seen key, events, then per event: bit, entity,
/// bucket key), per last (key, time, id, json), window bucket keys. Counts are added per entity and bucket once per
/// batch, not once per event. Key arguments are indexes into KEYS (0 = none), so every key the script touches is declared.
/// </summary>
internal static class RedisRealtimeScript
{
    public const string Source = """
        local ng = tonumber(ARGV[1])
        local nl = tonumber(ARGV[2])
        local wk = tonumber(ARGV[3])
        local wttl = tonumber(ARGV[4])
        local bttl = tonumber(ARGV[5])
        local lttl = tonumber(ARGV[6])
        local nb = tonumber(ARGV[7])
        local tfield = ARGV[8]
        local ifield = ARGV[9]
        local ne = tonumber(ARGV[10])
        local p = 11
        local countKey = {}
        local member = {}
        for e = 1, ne do
          countKey[e] = KEYS[tonumber(ARGV[p])]
          member[e] = ARGV[p + 1]
          p = p + 2
        end
        local counted = 0
        local perEntity = {}
        local perBucket = {}
        for g = 1, ng do
          local seen = KEYS[tonumber(ARGV[p])]
          local left = tonumber(ARGV[p + 1])
          p = p + 2
          while left > 0 do
            local m = math.min(left, 1000)
            local ops = {}
            for k = 1, m do
              local o = 4 * k
              ops[o - 3] = 'SET'
              ops[o - 2] = 'u1'
              ops[o - 1] = ARGV[p + 3 * (k - 1)]
              ops[o] = 1
            end
            local old = redis.call('BITFIELD', seen, unpack(ops))
            for k = 1, m do
              if old[k] == 0 then
                counted = counted + 1
                local q = p + 3 * (k - 1)
                local e = tonumber(ARGV[q + 1])
                if e > 0 then
                  perEntity[e] = (perEntity[e] or 0) + 1
                  local bk = tonumber(ARGV[q + 2])
                  if bk > 0 then
                    local b = perBucket[bk]
                    if not b then b = {}; perBucket[bk] = b end
                    b[e] = (b[e] or 0) + 1
                  end
                end
              end
            end
            p = p + 3 * m
            left = left - m
          end
        end
        for e, c in pairs(perEntity) do redis.call('INCRBY', countKey[e], c) end
        for bk, b in pairs(perBucket) do
          for e, c in pairs(b) do redis.call('ZINCRBY', KEYS[bk], c, member[e]) end
          redis.call('EXPIRE', KEYS[bk], bttl)
        end
        for i = 1, nl do
          local key = KEYS[tonumber(ARGV[p])]
          local ts = ARGV[p + 1]
          local id = tonumber(ARGV[p + 2])
          local json = ARGV[p + 3]
          p = p + 4
          local replace = true
          local current = redis.call('GET', key)
          if current then
            local ok, doc = pcall(cjson.decode, current)
            if ok and type(doc) == 'table' then
              local cts = doc[tfield]
              local cid = tonumber(doc[ifield]) or 0
              if type(cts) == 'string' and (cts > ts or (cts == ts and cid >= id)) then replace = false end
            end
          end
          if replace then redis.call('SET', key, json, 'EX', lttl) end
        end
        if wk > 0 then
          local keys = {}
          for i = 1, nb do keys[i] = KEYS[tonumber(ARGV[p + i - 1])] end
          redis.call('ZUNIONSTORE', KEYS[wk], nb, unpack(keys))
          redis.call('EXPIRE', KEYS[wk], wttl)
        end
        return counted
        """;
}
