-- Argo CD health check for a stratus Deployment (one release of a Project), Lua 5.1.
-- Healthy when the release Succeeded; Degraded when it Failed or was RolledBack (the
-- release did not go live); Progressing while Pending or Running.
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
local phase = obj.status.phase
local function stageText()
  local s = obj.status.failedStage
  if s == nil or s == "" then return "" end
  return " at stage " .. s
end
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Release " .. tostring(obj.status.releaseID or "") .. " is live"
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed" .. stageText()
  return hs
end
if phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = "Rolled back after a failure" .. stageText()
  return hs
end
local synced = condition(obj.status.conditions, "Synced")
if synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(synced, "Not synced")
  return hs
end
hs.status = "Progressing"
hs.message = "Phase: " .. tostring(phase or "Pending")
return hs
