-- Argo CD health check for a stratus kind (Lua 5.1, as Argo CD embeds).
-- Healthy on Ready=True; Progressing until the controller has observed the current
-- generation or while Ready is not yet True; Degraded on Synced=False or state "failed".
local hs = {}
local function condition(conditions, t)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == t then return c end
  end
  return nil
end
local function describe(c, fallback)
  if c == nil then return fallback end
  local m = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if m ~= "" then m = m .. ": " end
    m = m .. c.message
  end
  if m == "" then return fallback end
  return m
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the object"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end
local synced = condition(obj.status.conditions, "Synced")
if synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(synced, "Not synced")
  return hs
end
if obj.status.state == "failed" then
  hs.status = "Degraded"
  hs.message = describe(condition(obj.status.conditions, "Ready"), "Failed")
  return hs
end
local ready = condition(obj.status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end
hs.status = "Progressing"
hs.message = describe(ready, "Waiting for Ready")
if obj.status.state ~= nil and (ready == nil or ready.message == nil or ready.message == "") then
  hs.message = "State: " .. obj.status.state
end
return hs
