#!/usr/bin/env node
// Test-only driver of the independent IAM simulator (@cloud-copilot/iam-simulate, AGPL-3.0).
// Protocol: each stdin line is a JSON array of `runSimulation` inputs; for each line, one stdout
// line with a JSON array of {"result": "Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied"} or
// {"error": "..."} in the same order. The process lives as long as stdin stays open.
'use strict'

const readline = require('node:readline')
const { runSimulation } = require('@cloud-copilot/iam-simulate')

async function one(simulation) {
  try {
    const response = await runSimulation(simulation, {})
    if (response.resultType === 'error') {
      return { error: JSON.stringify(response.errors) }
    }
    return { result: response.overallResult }
  } catch (err) {
    return { error: String(err && err.stack ? err.stack : err) }
  }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.trim()) continue
    let batch
    try {
      batch = JSON.parse(line)
    } catch (err) {
      process.stdout.write(JSON.stringify({ fatal: `not JSON: ${err}` }) + '\n')
      continue
    }
    const results = []
    for (const simulation of batch) {
      results.push(await one(simulation))
    }
    process.stdout.write(JSON.stringify(results) + '\n')
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
})
